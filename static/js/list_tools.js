// Lists: the header checkbox selects every row shown (rows carry form="bulk-form");
// deleting the selection asks first. Without this script the checkboxes still work one by one.
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  document.querySelectorAll('input[name="ids"][form="bulk-form"]').forEach((box) => {
    box.checked = all.checked;
  });
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id !== "bulk-form" || form.elements.action.value !== "delete") return;
  const chosen = document.querySelectorAll('input[name="ids"][form="bulk-form"]:checked').length;
  if (!window.confirm(form.dataset.confirmDelete.replace("{n}", chosen))) event.preventDefault();
});
