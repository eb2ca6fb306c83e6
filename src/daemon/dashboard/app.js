// The dashboard: plain JavaScript in the browser, calling the daemon's Connect JSON API with the
// token the user typed (kept in this tab's sessionStorage only). Everything shown is written with
// textContent, never as HTML, so nothing from a job can run in the page.
const TOKEN_KEY = "ferry.token";
const REFRESH_MS = 2000;
const launched = []; // handles launched from this tab: { id, cookie, handler, state }
let timer;

const $ = (id) => document.getElementById(id);

async function call(service, method, body) {
  const response = await fetch(`/ferry.v1.${service}/${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`,
    },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = response.headers.get("ferry-error-code") ?? answer.code ?? response.status;
    throw new Error(`${code}: ${answer.message ?? response.statusText}`);
  }
  return answer;
}

function showError(error) {
  const box = $("error");
  box.hidden = error === undefined;
  box.textContent = error === undefined ? "" : String(error.message ?? error);
}

function row(cells, stateIndex) {
  const tr = document.createElement("tr");
  cells.forEach((cell, i) => {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell ?? "";
    if (i === stateIndex) td.className = `state-${cell}`;
    tr.append(td);
  });
  return tr;
}

function fill(tableId, rows) {
  $(tableId)
    .querySelector("tbody")
    .replaceChildren(...rows);
}

async function refresh() {
  try {
    const stats = await call("AdminService", "Stats", {}).catch((error) =>
      String(error.message).startsWith("FERRY_PERMISSION_DENIED") ? undefined : Promise.reject(error),
    );
    if (stats !== undefined) {
      fill(
        "stats",
        (stats.queues ?? []).flatMap((q) =>
          Object.entries(q.states ?? {}).map(([state, n]) => row([q.queue, state, n], 1)),
        ),
      );
      $("totals").textContent =
        `launched ${stats.launched ?? 0} · completed ${stats.completed ?? 0} · failed ${stats.failed ?? 0} · cancelled ${stats.cancelled ?? 0}`;
    }
    const list = await call("JobService", "List", { limit: 1000 });
    const jobs = (list.jobs ?? []).slice(-50).reverse();
    fill(
      "jobs",
      jobs.map((j) => {
        const preview = document.createElement("span");
        preview.textContent = j.preview ?? "";
        const cells = [j.id, j.handler, j.queue, j.state, j.attempts ?? 0, j.launchedAt, preview];
        const tr = row(cells, 3);
        tr.lastChild.className = "preview";
        return tr;
      }),
    );
    for (const job of launched) {
      if (["completed", "failed", "cancelled"].includes(job.state)) continue;
      const status = await call("JobService", "Status", { handle: { id: job.id, cookie: job.cookie } });
      job.state = status.state;
    }
    fill(
      "mine",
      launched.map((job) => {
        const cancel = document.createElement("button");
        cancel.textContent = "Cancel";
        cancel.disabled = ["completed", "failed", "cancelled"].includes(job.state);
        cancel.addEventListener("click", () =>
          call("JobService", "Cancel", { handle: { id: job.id, cookie: job.cookie } }).then(
            refresh,
            showError,
          ),
        );
        return row([job.id, job.handler, job.state, cancel], 2);
      }),
    );
    showError(undefined);
  } catch (error) {
    showError(error);
    if (String(error.message).startsWith("FERRY_UNAUTHENTICATED")) signOut();
  }
}

function signedIn(yes) {
  $("signed-in").hidden = !yes;
  $("sign-out").hidden = !yes;
  $("sign-in").querySelector("button[type=submit]").hidden = yes;
  $("token").disabled = yes;
  clearInterval(timer);
  if (yes) {
    timer = setInterval(refresh, REFRESH_MS);
    void refresh();
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  $("who").textContent = "";
  signedIn(false);
}

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  $("who").textContent = "signed in";
  signedIn(true);
});
$("sign-out").addEventListener("click", signOut);

$("launch").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const text = $("payload").value.trim();
    const payload = text === "" ? null : JSON.parse(text);
    const handler = $("handler").value.trim();
    const { handle } = await call("JobService", "Launch", {
      handler,
      payload,
      options: { queue: $("queue").value.trim() || "default" },
    });
    launched.unshift({ id: handle.id, cookie: handle.cookie, handler, state: "queued" });
    await refresh();
  } catch (error) {
    showError(error);
  }
});

if (sessionStorage.getItem(TOKEN_KEY)) {
  $("who").textContent = "signed in";
  signedIn(true);
}
