// Customer 360 niceties. Every page works without this file; it only makes forms friendlier.
(() => {
  "use strict";

  // A small formatted-text editor over a <textarea data-rich>: the textarea stays the form field.
  const TOOLS = [
    ["bold", "bi-type-bold"],
    ["italic", "bi-type-italic"],
    ["underline", "bi-type-underline"],
    ["insertUnorderedList", "bi-list-ul"],
    ["insertOrderedList", "bi-list-ol"],
    ["createLink", "bi-link-45deg"],
  ];

  function richEditor(area) {
    if (area.dataset.richReady) return;
    area.dataset.richReady = "1";
    const bar = document.createElement("div");
    bar.className = "btn-toolbar gap-1 mb-1";
    bar.setAttribute("role", "toolbar");
    const box = document.createElement("div");
    box.className = "form-control rich-box";
    box.contentEditable = "true";
    box.setAttribute("role", "textbox");
    box.setAttribute("aria-multiline", "true");
    box.setAttribute("aria-label", area.getAttribute("aria-label") || area.labels?.[0]?.textContent || "");
    box.dataset.placeholder = area.getAttribute("placeholder") || "";
    box.innerHTML = area.value; // the server's own sanitised HTML, or empty
    for (const [cmd, icon] of TOOLS) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn btn-sm btn-outline-secondary";
      b.innerHTML = `<i class="bi ${icon}"></i>`;
      b.title = cmd;
      b.addEventListener("click", () => {
        box.focus();
        if (cmd === "createLink") {
          const url = window.prompt("https://");
          if (url && /^(https?:\/\/|mailto:)/i.test(url)) document.execCommand(cmd, false, url);
        } else {
          document.execCommand(cmd, false, null);
        }
        area.value = box.innerHTML;
      });
      bar.appendChild(b);
    }
    box.addEventListener("input", () => { area.value = box.innerHTML; });
    area.form?.addEventListener("reset", () => { box.innerHTML = ""; });
    area.classList.add("d-none");
    area.before(bar, box);
  }

  // The timeline form shows minutes/direction only for the kinds they belong to.
  function activityForm(form) {
    const sync = () => {
      const kind = form.querySelector("[name=kind]:checked")?.value || "note";
      form.querySelectorAll("[data-kinds]").forEach((el) => {
        el.classList.toggle("d-none", !el.dataset.kinds.split(" ").includes(kind));
      });
    };
    form.querySelectorAll("[name=kind]").forEach((r) => r.addEventListener("change", sync));
    sync();
  }

  // "Add a filter": the operators and the value box follow the chosen field.
  function filterBuilder(form) {
    const fields = JSON.parse(form.dataset.fields || "[]");
    const fieldSel = form.querySelector("[name=add_field]");
    const opSel = form.querySelector("[name=add_op]");
    const valueBox = form.querySelector("[data-value-box]");
    const sync = () => {
      const f = fields.find((x) => x.key === fieldSel.value);
      if (!f) return;
      opSel.replaceChildren(...f.ops.map(([op, label]) => new Option(label, op)));
      let input;
      if (f.choices.length) {
        input = document.createElement("select");
        input.className = "form-select form-select-sm";
        input.append(...f.choices.map(([v, label]) => new Option(label, v)));
      } else if (f.kind === "bool") {
        input = document.createElement("select");
        input.className = "form-select form-select-sm";
        input.append(new Option("✓", "1"), new Option("✗", "0"));
      } else {
        input = document.createElement("input");
        input.className = "form-control form-control-sm";
        input.type = { number: "number", date: "date", datetime: "date" }[f.kind] || "text";
        if (f.kind === "number") input.step = "any";
      }
      input.name = "add_value";
      input.setAttribute("aria-label", valueBox.dataset.label || "");
      valueBox.replaceChildren(input);
      const toggle = () => input.classList.toggle("invisible", ["empty", "notempty"].includes(opSel.value));
      opSel.onchange = toggle;
      toggle();
    };
    fieldSel.addEventListener("change", sync);
    sync();
  }

  function init(root) {
    root.querySelectorAll?.("textarea[data-rich]").forEach(richEditor);
    root.querySelectorAll?.("form[data-activity-form]").forEach(activityForm);
    root.querySelectorAll?.("form[data-filter-builder]").forEach(filterBuilder);
  }

  document.addEventListener("DOMContentLoaded", () => init(document));
  document.addEventListener("htmx:load", (evt) => init(evt.detail.elt.parentNode || evt.detail.elt));
})();
