// The pickup board on a counter TV: short order numbers in "Preparing" and "Ready: collect now",
// live from the server's board stream. It opens with a display link (/board/{storeId}#key=...);
// the key stays in the fragment, which the browser never sends, and goes only in the
// X-Display-Key header of the board's own requests. A stream that goes quiet for 2.5 heartbeats
// is dropped and the board shows "Reconnecting… last updated HH:MM:SS" instead of its numbers.

import { Chime } from "./sound.js";

const storeId = decodeURIComponent(location.pathname.split("/")[2] || "");
const key = new URLSearchParams(location.hash.slice(1)).get("key") || "";
const $ = (id) => document.getElementById(id);
const time = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const NEW_FOR_MS = 60_000; // a new ready number stays highlighted this long

let heartbeatMs = 3000;
let lastHeard = 0; // when the stream last said anything (ms)
let lastUpdated = null; // when the numbers shown were last known current
let current = null; // the stream's AbortController
let announce = false;
let firstBoard = true;
const readySince = new Map(); // number → when it became ready on this screen
const chime = new Chime();
chime.enabled = false;

function setState(state) {
  document.body.dataset.state = state;
  const stale = state === "stale";
  $("banner").hidden = !stale;
  if (stale) {
    $("banner-detail").textContent = lastUpdated
      ? `last updated ${time.format(lastUpdated)}` : "waiting for the first update";
  }
}

function numberItem(number, fresh) {
  const item = document.createElement("li");
  item.className = fresh ? "num num--new" : "num";
  item.dataset.number = number;
  item.textContent = number;
  return item;
}

function render(board) {
  $("store-name").textContent = board.storeName || "OrderPulse";
  document.title = `${board.storeName || "Pickup"} · pickup board`;
  announce = Boolean(board.announce);
  const now = Date.now();
  const arrived = [];
  for (const number of board.ready) {
    if (!readySince.has(number)) {
      readySince.set(number, firstBoard ? 0 : now);
      if (!firstBoard) arrived.push(number);
    }
  }
  for (const number of [...readySince.keys()]) if (!board.ready.includes(number)) readySince.delete(number);
  $("preparing").replaceChildren(...board.preparing.map((number) => numberItem(number, false)));
  $("ready").replaceChildren(...board.ready.map((number) => numberItem(number, now - readySince.get(number) < NEW_FOR_MS)));
  document.body.dataset.shownAt = String(now);
  firstBoard = false;
  if (arrived.length) called(arrived);
}

function called(numbers) {
  chime.play();
  const words = numbers.map((number) => `Order ${Number(number) || number} is ready`);
  $("announcer").textContent = words.join(". ");
  if (announce && "speechSynthesis" in window) {
    for (const sentence of words) window.speechSynthesis.speak(new SpeechSynthesisUtterance(sentence));
  }
}

function heard() {
  lastHeard = Date.now();
  lastUpdated = new Date(lastHeard);
  if (document.body.dataset.state !== "live") setState("live");
}

function handle(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (!data.length) return;
  const body = JSON.parse(data.join("\n"));
  if (event === "revoked") throw new Revoked();
  if (event === "alive") heartbeatMs = Math.max(500, Number(body.heartbeatSeconds) * 1000 || heartbeatMs);
  if (event === "board") render(body);
  heard();
}

class Revoked extends Error {}

async function follow() {
  current = new AbortController();
  lastHeard = Date.now(); // a server that never answers is given up on like a silent stream
  const response = await fetch(`/api/stores/${encodeURIComponent(storeId)}/board/events`, {
    headers: { "X-Display-Key": key, Accept: "text/event-stream" }, cache: "no-store", signal: current.signal,
  });
  if (response.status === 401 || response.status === 404) throw new Revoked();
  if (!response.ok || !response.body) throw new Error(`board stream answered ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      handle(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function revoked() {
  setState("revoked");
  $("columns").hidden = true;
  $("notice").hidden = false;
  $("notice").textContent = "This display link is not valid any more. Ask the store's staff for a new pickup board link.";
}

async function run() {
  let wait = 1000;
  for (;;) {
    try {
      await follow();
    } catch (error) {
      if (error instanceof Revoked) {
        revoked();
        return;
      }
    }
    setState("stale");
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 5000);
    if (document.body.dataset.state === "live") wait = 1000;
  }
}

// A stream that stopped talking (a stalled network, a frozen server) is cut and reopened.
setInterval(() => {
  $("clock").textContent = time.format(new Date()).slice(0, 5);
  if (current && lastHeard && Date.now() - lastHeard > 2.5 * heartbeatMs) {
    lastHeard = 0;
    setState("stale");
    current.abort();
  }
}, 250);

$("sound").addEventListener("click", () => {
  const on = $("sound").getAttribute("aria-pressed") !== "true";
  $("sound").setAttribute("aria-pressed", String(on));
  $("sound").textContent = on ? "Sound on" : "Turn on sound";
  chime.enabled = on;
  if (on) {
    chime.unlock();
    // Browsers speak only after a gesture on the page: this click is it.
    if (announce && "speechSynthesis" in window) window.speechSynthesis.speak(new SpeechSynthesisUtterance("Announcements on"));
  }
});

if (!key) {
  $("columns").hidden = true;
  $("notice").hidden = false;
  $("notice").textContent = "Open this board with the display link the store's staff made for this screen.";
} else {
  run();
}
