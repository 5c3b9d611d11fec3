// The sign-up page: a student (with a register number), a faculty member (with an employee id), or
// a store employee (employee id and the store they work at), who waits for an admin to assign it.
// The API checks every field and names the first bad one; the page shows that and focuses it.

import { ApiError, homeFor, safeNext, signUp } from "./api.js";

const form = document.getElementById("signup-form");
const errorBox = document.getElementById("signup-error");
const submit = document.getElementById("signup-submit");
const idLabel = document.getElementById("id-label");
const params = new URLSearchParams(window.location.search);
const FIELD_OF = { name: "name", email: "email", password: "password", registerNumber: "identifier", employeeId: "identifier",
  storeName: "storeName", phoneNumber: "phoneNumber" };
const pending = document.getElementById("signup-pending");

function role() {
  return form.querySelector("input[name=role]:checked").value;
}

function showRole() {
  idLabel.textContent = role() === "student" ? "Register number" : "Employee ID";
  const staff = role() === "store_employee";
  document.getElementById("store-field").hidden = !staff;
  document.getElementById("phone-field").hidden = !staff;
  document.getElementById("staff-hint").hidden = !staff;
  form.storeName.required = staff;
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
  if (role() === "store_employee") {
    account.storeName = form.storeName.value.trim();
    account.phoneNumber = form.phoneNumber.value.trim() || null;
  }
  submit.disabled = true;
  submit.textContent = "Creating your account…";
  try {
    const user = await signUp(account);
    if (user.awaitingStore) {
      // Nothing to open yet: say plainly what happens next instead of landing on an empty kitchen.
      form.hidden = true;
      pending.textContent = `Your account is created. An admin must assign you to ${account.storeName} before you ` +
        "can run it; sign in again once they have, and you will land on its kitchen display.";
      pending.hidden = false;
      pending.focus();
      return;
    }
    window.location.assign(safeNext(params.get("next")) || (homeFor(user) === "/orders" ? "/stores" : homeFor(user)));
  } catch (error) {
    showError(error instanceof ApiError ? error.message : "Something went wrong. Please try again.");
    submit.disabled = false;
    submit.textContent = "Create account";
  }
});
