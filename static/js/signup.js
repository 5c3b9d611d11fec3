// The sign-up page: a student (with a register number) or a faculty member (with an employee id).
// The API checks every field and names the first bad one; the page shows that and focuses it.

import { ApiError, homeFor, safeNext, signUp } from "./api.js";

const form = document.getElementById("signup-form");
const errorBox = document.getElementById("signup-error");
const submit = document.getElementById("signup-submit");
const idLabel = document.getElementById("id-label");
const params = new URLSearchParams(window.location.search);
const FIELD_OF = { name: "name", email: "email", password: "password", registerNumber: "identifier", employeeId: "identifier" };

function role() {
  return form.querySelector("input[name=role]:checked").value;
}

function showRole() {
  idLabel.textContent = role() === "student" ? "Register number" : "Employee ID";
}

for (const radio of form.querySelectorAll("input[name=role]")) radio.addEventListener("change", showRole);
showRole();

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  for (const input of form.querySelectorAll("input[aria-invalid]")) input.removeAttribute("aria-invalid");
  const field = Object.keys(FIELD_OF).find((name) => message.startsWith(name));
  const input = field ? form.elements[FIELD_OF[field]] : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", "signup-error");
    input.focus();
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const account = {
    name: form.name.value.trim(), email: form.email.value.trim(), password: form.password.value, role: role(),
  };
  account[role() === "student" ? "registerNumber" : "employeeId"] = form.identifier.value.trim();
  submit.disabled = true;
  submit.textContent = "Creating your account…";
  try {
    const user = await signUp(account);
    window.location.assign(safeNext(params.get("next")) || (homeFor(user) === "/orders" ? "/stores" : homeFor(user)));
  } catch (error) {
    showError(error instanceof ApiError ? error.message : "Something went wrong. Please try again.");
    submit.disabled = false;
    submit.textContent = "Create account";
  }
});
