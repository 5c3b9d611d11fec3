// The sign-in page: one form for customers, store staff and admins; each lands on their own page.

import { ApiError, currentUser, homeFor, safeNext, signIn, refreshSession } from "./api.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const infoBox = document.getElementById("login-info");
const submit = document.getElementById("login-submit");
const params = new URLSearchParams(window.location.search);

function destination(user) {
  const next = safeNext(params.get("next"));
  // Staff have no tracking page of their own and customers no kitchen: ignore a `next`
  // that belongs to the other kind of account.
  if (next && !(next.startsWith("/kitchen") && user.role !== "store_employee")
      && !(next.startsWith("/admin") && user.role !== "admin")) return next;
  return homeFor(user);
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

if (params.get("reason") === "expired") {
  infoBox.textContent = "Your session ended. Please sign in again to continue.";
  infoBox.hidden = false;
} else if (params.get("signedOut")) {
  infoBox.textContent = "You have signed out.";
  infoBox.hidden = false;
}

// Already signed in in this tab (e.g. the back button): go straight on if the session still works.
if (currentUser() && !params.get("signedOut")) {
  refreshSession()
    .then((session) => window.location.replace(destination(session.user)))
    .catch(() => {});
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const email = form.email.value.trim();
  const password = form.password.value;
  if (!email || !password) {
    showError(!email ? "Enter your email address." : "Enter your password.");
    (!email ? form.email : form.password).focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    const user = await signIn(email, password);
    window.location.assign(destination(user));
  } catch (error) {
    const message = error instanceof ApiError ? error.message : "Something went wrong. Please try again.";
    showError(message);
    form.password.select();
    form.password.focus();
    submit.disabled = false;
    submit.textContent = "Sign in";
  }
});
