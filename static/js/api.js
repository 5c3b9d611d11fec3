// REST client: the session (tokens in sessionStorage), token refresh before expiry, and a
// fetch wrapper that unwraps the `{success, message, data}` envelope into values or ApiError.

import { noteDateHeader } from "./clock.js";

const SESSION_KEY = "orderpulse.session";
const NETWORK_MESSAGE = "Can't reach OrderPulse right now. Check your connection; we'll keep trying.";
const CUSTOMER_ROLES = ["student", "faculty"];

export class ApiError extends Error {
  /** `status` is the HTTP status, or 0 when the server could not be reached. */
  constructor(status, message, body = null, headers = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.headers = headers;
  }

  get isNetwork() {
    return this.status === 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Session

export function decodeJwt(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Milliseconds since the epoch at which a JWT expires, or null when unreadable. */
export function tokenExpiry(token) {
  const payload = token ? decodeJwt(token) : null;
  return payload && typeof payload.exp === "number" ? payload.exp * 1000 : null;
}

function readSession() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function writeSession(data) {
  const session = {
    accessToken: data.accessToken,
    refreshToken: data.refreshToken,
    user: data.user || readSession()?.user || null,
    // Local receive time and the token's own lifetime let us refresh correctly even when the
    // device clock disagrees with the server's `exp`.
    issuedAt: Date.now(),
  };
  const payload = decodeJwt(session.accessToken) || {};
  session.lifetimeMs = payload.exp && payload.iat ? (payload.exp - payload.iat) * 1000 : null;
  if (session.user && !session.user.storeId && payload.storeId) session.user.storeId = payload.storeId;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  scheduleRefresh();
  window.dispatchEvent(new CustomEvent("orderpulse:token", { detail: { accessToken: session.accessToken } }));
  return session;
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
  clearTimeout(refreshTimer);
}

export function currentUser() {
  return readSession()?.user || null;
}

export function isCustomer(user) {
  return !!user && CUSTOMER_ROLES.includes(user.role);
}

export function isStaff(user) {
  return !!user && user.role === "store_employee";
}

/** Where a user lands after signing in when no `?next=` was given. */
export function homeFor(user) {
  if (isCustomer(user)) return "/orders";
  return user?.role === "admin" ? "/admin" : "/kitchen";
}

/** Only same-origin absolute paths are accepted as a post-login destination. */
export function safeNext(value) {
  if (!value || typeof value !== "string") return null;
  if (!value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) return null;
  return value;
}

/** Milliseconds (local clock) at which the access token expires. */
function accessExpiresAtLocal(session) {
  if (!session?.accessToken) return 0;
  if (session.lifetimeMs && session.issuedAt) return session.issuedAt + session.lifetimeMs;
  return tokenExpiry(session.accessToken) || 0;
}

// ---------------------------------------------------------------------------------------------
// Refresh

let refreshTimer = null;
let refreshing = null;

/** Rotate the refresh token once, however many callers ask at the same time. */
export function refreshSession() {
  if (refreshing) return refreshing;
  const session = readSession();
  if (!session?.refreshToken) return Promise.reject(new ApiError(401, "Your session has ended. Please sign in again."));
  refreshing = (async () => {
    try {
      const data = await request("/api/auth/refresh", {
        method: "POST",
        body: { refreshToken: session.refreshToken },
        auth: false,
      });
      return writeSession(data);
    } catch (error) {
      if (!error.isNetwork) {
        clearSession();
        window.dispatchEvent(new CustomEvent("orderpulse:signedout", { detail: { message: error.message } }));
      }
      throw error;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function refreshLeadMs(session) {
  const lifetime = session.lifetimeMs || 15 * 60 * 1000;
  return Math.min(60_000, lifetime / 4);
}

export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const session = readSession();
  if (!session?.refreshToken) return;
  const due = accessExpiresAtLocal(session) - refreshLeadMs(session) - Date.now();
  refreshTimer = setTimeout(() => {
    refreshSession().catch((error) => {
      // Offline: try again shortly; the access token may still be good for a while.
      if (error.isNetwork) refreshTimer = setTimeout(scheduleRefresh, 5000);
    });
  }, Math.max(0, due));
}

/** An access token valid for at least `minValidityMs`, refreshing first when needed. */
export async function validAccessToken(minValidityMs = 20_000) {
  const session = readSession();
  if (!session) throw new ApiError(401, "Please sign in to continue.");
  if (accessExpiresAtLocal(session) - Date.now() > minValidityMs) return session.accessToken;
  return (await refreshSession()).accessToken;
}

// Timers do not run while a phone sleeps: catch up as soon as the page is visible again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && readSession()) {
    const session = readSession();
    if (accessExpiresAtLocal(session) - Date.now() < refreshLeadMs(session)) {
      refreshSession().catch(() => {});
    } else {
      scheduleRefresh();
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Requests

async function request(path, { method = "GET", body, headers = {}, auth = true, signal, envelope = false, retried = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, signal, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth) init.headers.Authorization = `Bearer ${await validAccessToken()}`;

  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, NETWORK_MESSAGE);
  }
  noteDateHeader(response.headers.get("Date"), sentAt, Date.now());

  if (response.status === 304) return { status: 304, headers: response.headers, data: null };

  let payload = null;
  const text = await response.text().catch(() => "");
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null;
    }
  }

  if (response.status === 401 && auth && !retried && readSession()?.refreshToken) {
    // The token expired in flight, or the device slept past its expiry: rotate and retry once.
    await refreshSession();
    return request(path, { method, body, headers, auth, signal, envelope, retried: true });
  }

  if (!response.ok || (payload && payload.success === false)) {
    throw new ApiError(response.status, errorMessage(response.status, payload), payload, response.headers);
  }
  if (envelope) return payload || {};
  return payload && "data" in payload ? payload.data : payload;
}

function errorMessage(status, payload) {
  if (payload && typeof payload.message === "string" && payload.message) return payload.message;
  if (status === 401) return "Your session has ended. Please sign in again.";
  if (status === 403) return "You do not have permission to do that.";
  if (status === 404) return "Not found.";
  if (status === 429) return "Too many requests. Please wait a moment.";
  if (status >= 500) return "OrderPulse hit a problem on its side. Please try again in a moment.";
  return `Request failed (${status}).`;
}

/**
 * Call a JSON API route and return `data` (or the whole body when it has no `data`);
 * `{envelope: true}` returns the whole body, for routes whose `message` matters.
 */
export function api(path, options = {}) {
  return request(path, options);
}

/** Like `api` but returns the whole answer: `{status, headers, body}` (used for ETags). */
export async function apiRaw(path, { headers = {}, signal, retried = false } = {}) {
  const init = {
    headers: { Accept: "application/json", ...headers, Authorization: `Bearer ${await validAccessToken()}` },
    signal,
    cache: "no-store",
  };
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, NETWORK_MESSAGE);
  }
  noteDateHeader(response.headers.get("Date"), sentAt, Date.now());
  if (response.status === 401 && !retried) {
    await refreshSession();
    return apiRaw(path, { headers, signal, retried: true });
  }
  let body = null;
  if (response.status !== 304) body = await response.json().catch(() => null);
  if (!response.ok && response.status !== 304) {
    throw new ApiError(response.status, errorMessage(response.status, body), body, response.headers);
  }
  return { status: response.status, headers: response.headers, body };
}

// ---------------------------------------------------------------------------------------------
// Signing in and out

export async function signIn(email, password) {
  const data = await request("/api/auth/login", { method: "POST", body: { email, password }, auth: false });
  return writeSession(data).user;
}

/** Create a customer account (`POST /api/auth/register`) and sign it in. */
export async function signUp(account) {
  const data = await request("/api/auth/register", { method: "POST", body: account, auth: false });
  return writeSession(data).user;
}

export async function signOut() {
  const session = readSession();
  clearSession();
  if (session?.refreshToken) {
    try {
      await request("/api/auth/logout", { method: "POST", body: { refreshToken: session.refreshToken }, auth: false });
    } catch {
      // The local session is gone either way; the refresh token expires on its own.
    }
  }
  window.location.assign("/login?signedOut=1");
}

function loginUrl(reason) {
  const next = window.location.pathname + window.location.search;
  const params = new URLSearchParams({ next });
  if (reason) params.set("reason", reason);
  return `/login?${params}`;
}

window.addEventListener("orderpulse:signedout", () => {
  if (!window.location.pathname.startsWith("/login")) window.location.assign(loginUrl("expired"));
});

/**
 * The signed-in user, or a redirect to /login (and a never-settling promise) when there is none.
 * `allow` decides whether this page is for that user; otherwise they go to their own home page.
 */
export async function requireSession(allow = () => true) {
  const session = readSession();
  if (!session?.refreshToken) {
    window.location.replace(loginUrl());
    return new Promise(() => {});
  }
  scheduleRefresh();
  if (!allow(session.user)) {
    window.location.replace(homeFor(session.user));
    return new Promise(() => {});
  }
  return session.user;
}

/** Wire every `[data-signout]` button on the page. */
export function bindSignOut(root = document) {
  for (const button of root.querySelectorAll("[data-signout]")) {
    button.addEventListener("click", () => {
      button.disabled = true;
      signOut();
    });
  }
}
