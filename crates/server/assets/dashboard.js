// Tessera dashboard: niceties on top of pages that work without this script.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  const done = () => {
    button.textContent = "Copied";
    button.classList.add("done");
    setTimeout(() => {
      button.textContent = "Copy";
      button.classList.remove("done");
    }, 2000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => {
      field.select();
    });
  } else {
    field.select();
    if (document.execCommand && document.execCommand("copy")) done();
  }
});

// Typing a lifetime of one's own chooses "Other".
document.addEventListener("input", (event) => {
  const input = event.target;
  const group = input.closest("[data-lifetime]");
  if (!group || input.type !== "text") return;
  const other = group.querySelector('input[type="radio"][value="other"]');
  if (other) other.checked = true;
});

// Forms that do something drastic ask first; a confirmed delete skips the
// confirmation page that a browser without this script is shown.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (!question) return;
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  const flag = form.querySelector("input[data-confirmed]");
  if (flag) flag.value = flag.dataset.confirmed;
});
