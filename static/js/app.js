// htmx conventions of the whole app. The CSRF header is set once on <body> (hx-headers).
document.addEventListener("DOMContentLoaded", () => {
  if (!window.htmx) return;
  // Swap 422 (a form with errors) like a success; other errors raise a toast instead of a silent no-op.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "422", swap: true },
    { code: "[45]..", swap: false, error: true },
  ];
  htmx.config.historyCacheSize = 0; // pages hold personal data: restore from the server, not localStorage
});

document.addEventListener("htmx:responseError", (evt) => {
  const box = document.getElementById("toasts");
  if (!box) return;
  const doc = new DOMParser().parseFromString(evt.detail.xhr.responseText, "text/html");
  const msg = (doc.querySelector("[data-status]") || doc.querySelector("p.lead") || doc.body).textContent.trim();
  const toast = document.createElement("div");
  toast.className = "toast align-items-center text-bg-danger border-0 show";
  toast.setAttribute("role", "alert");
  toast.innerHTML = '<div class="d-flex"><div class="toast-body"></div><button type="button" class="btn-close btn-close-white me-2 m-auto" data-bs-dismiss="toast"></button></div>';
  toast.querySelector(".toast-body").textContent = msg.slice(0, 300);
  box.appendChild(toast);
  setTimeout(() => toast.remove(), 8000);
});
