// Accounts looked after by email: /forgot-password asks for a reset link, /reset-password/{token}
// sets a new password with it, /verify-email/{token} confirms the address (server: account_routes).

import { ApiError, api, clearSession } from "./api.js";

const title = document.getElementById("account-title");
const infoBox = document.getElementById("account-info");
const errorBox = document.getElementById("account-error");
const [, page, token] = window.location.pathname.split("/");

function show(box, message) {
  box.textContent = message;
  box.hidden = false;
}

function problem(error) {
  return error instanceof ApiError ? error.message : "Something went wrong. Please try again.";
}

async function submitting(button, busyText, work) {
  const idle = button.textContent;
  button.disabled = true;
  button.textContent = busyText;
  errorBox.hidden = true;
  try {
    await work();
  } catch (error) {
    show(errorBox, problem(error));
  } finally {
    button.disabled = false;
    button.textContent = idle;
  }
}

function forgotPassword() {
  document.title = "Forgot your password? · OrderPulse";
  title.textContent = "Forgot your password?";
  const form = document.getElementById("forgot-form");
  form.hidden = false;
  form.email.focus();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const email = form.email.value.trim();
    if (!email) {
      show(errorBox, "Enter your email address.");
      form.email.focus();
      return;
    }
    submitting(document.getElementById("forgot-submit"), "Sending…", async () => {
      const answer = await api("/api/auth/forgot-password", { method: "POST", body: { email }, auth: false, envelope: true });
      show(infoBox, answer.message);
    });
  });
}

function resetPassword() {
  document.title = "Choose a new password · OrderPulse";
  title.textContent = "Choose a new password";
  const form = document.getElementById("reset-form");
  form.hidden = false;
  form.password.focus();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (form.password.value.length < 8) {
      show(errorBox, "The password needs at least 8 characters.");
      form.password.focus();
      return;
    }
    if (form.password.value !== form.confirm.value) {
      show(errorBox, "The two passwords differ.");
      form.confirm.focus();
      return;
    }
    submitting(document.getElementById("reset-submit"), "Changing…", async () => {
      const answer = await api(`/api/auth/reset-password/${encodeURIComponent(token)}`,
        { method: "POST", body: { password: form.password.value }, auth: false, envelope: true });
      clearSession();  // this browser's session ended with every other one
      form.hidden = true;
      show(infoBox, answer.message);
      const next = document.createElement("a");
      next.href = "/login";
      next.className = "button button--block button--large";
      next.textContent = "Sign in";
      form.after(next);
      next.focus();
    });
  });
}

async function verifyEmail() {
  document.title = "Verify your email · OrderPulse";
  title.textContent = "Verifying your email…";
  try {
    const answer = await api(`/api/auth/verify-email/${encodeURIComponent(token)}`, { method: "POST", auth: false, envelope: true });
    title.textContent = "Email verified";
    show(infoBox, answer.message);
  } catch (error) {
    title.textContent = "This link did not work";
    show(errorBox, problem(error));
  }
}

if (page === "forgot-password") forgotPassword();
else if (page === "reset-password" && token) resetPassword();
else if (page === "verify-email" && token) verifyEmail();
