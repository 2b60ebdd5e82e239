// Editing a run's name, tags and notes (the spec's description) with PATCH /experiments/{id},
// and deleting a finished run (DELETE /experiments/{id}; the api refuses a live one with 409).

import * as api from "./api.js";
import { h } from "./forms.js";

export const parseTags = (text) => [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))];

// A folded form; `onSaved(experiment)` gets the api's answer.
export function editPanel(experiment, onSaved) {
  const errors = h("div", { class: "form-errors" });
  const form = h("form", { id: "experiment-edit-form" },
    h("div", { class: "grid" },
      h("div", { class: "field" }, h("label", {}, h("span", { class: "field-name" }, "name"),
        h("input", { name: "name", value: experiment.name, required: true, maxlength: 200 }))),
      h("div", { class: "field" }, h("label", {}, h("span", { class: "field-name" }, "tags"),
        h("input", { name: "tags", value: experiment.tags.join(", "), placeholder: "comma, separated" })))),
    h("div", { class: "field" }, h("label", {}, h("span", { class: "field-name" }, "notes"),
      h("textarea", { name: "description", rows: 3, maxlength: 10000 }, experiment.spec?.description ?? ""))),
    errors,
    h("button", { type: "submit", class: "primary" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const data = new FormData(form);
    try {
      const saved = await api.updateExperiment(experiment.id, {
        name: data.get("name").trim(), tags: parseTags(data.get("tags")), description: data.get("description"),
      });
      onSaved(saved);
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      errors.replaceChildren(h("p", {}, `Not saved: ${error.message}`));
    }
  });
  return h("details", { class: "card", id: "experiment-edit" }, h("summary", {}, "Edit name, tags and notes"), form);
}

// A button for a finished run: asks first, then deletes it and goes back to the list.
export function deleteButton(experiment, onRefused) {
  const remove = async () => {
    if (!confirm(`Delete #${experiment.id} ${experiment.name}? Its metrics and weights are deleted too.`)) return;
    try {
      await api.deleteExperiment(experiment.id);
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      onRefused(error);
      return;
    }
    location.hash = "#/experiments";
  };
  return h("button", { id: "delete", class: "danger", onclick: remove }, "Delete");
}
