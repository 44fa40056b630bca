/* The requester's gold page: the annotation workspace (workspace.mjs) on one microtask of their
 * job, whose drawn answer is saved as the microtask's known answer (PUT to the gold API) instead
 * of being typed as JSON. A page module of its own: the worker page (page.mjs) only lends helpers.
 *
 * The URLs come from the page (data-save-url, data-done-url on #annotate); the task (frames at the
 * requester's access-checked URLs) and any existing answer come in #gold-data.
 */

import { payloadOf } from "./core.mjs";
// The worker page's helpers (importing page.mjs runs nothing here: it acts only on a page with
// an assignment or a qualification test).
import { errorOf, markErrors, post, showMessage } from "./page.mjs";
import { clearErrors, createEditor } from "./workspace.mjs";

const $ = (id) => document.getElementById(id);

function goldPage(root, data) {
  const saveUrl = root.dataset.saveUrl;
  const editor = createEditor({
    changed: () => {},
    message: showMessage,
    rendered: () => {},
    keydown: (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        save();
        return true;
      }
      return false;
    },
  });
  const ws = editor.workspace({
    key: String(data.microtask),
    number: 1,
    type: data.type,
    classes: data.classes,
    trackMasks: !!data.track_masks,
    task: data.task,
    payload: data.payload,
  });

  async function save() {
    const sent = payloadOf(ws.state, ws.type);
    $("submit").disabled = true;
    const r = await post(saveUrl, { payload: sent }, "PUT");
    $("submit").disabled = false;
    clearErrors(ws.state);
    if (r.ok) {
      showMessage("Saved: this microtask is gold with the answer you drew.", false);
      $("done").hidden = false;
      editor.render();
      return;
    }
    const err = errorOf(r);
    showMessage(err.message, true);
    markErrors(ws.state, err.fields || {}, sent);
    editor.render();
  }

  $("submit").addEventListener("click", save);
  editor.use(ws);
  editor.render();
}

const root = $("annotate");
const data = $("gold-data");
if (root && data && $("canvas")) goldPage(root, JSON.parse(data.textContent));
