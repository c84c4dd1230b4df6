"""``pareto.html`` in a real browser: headless Chromium (the OS package), driven over its DevTools protocol.

The page of a real report (``report.write_report`` on test_report's 24-trial frame: finished, running,
failed, pending and collapsed trials) is loaded from disk. The test checks that each cost's chart draws
one mark per finished trial and one front line, that hovering each mark (a real mouse move) shows that
trial's hyperparameters and metrics, and that the page makes no request beyond its own file. It saves
screenshots at a desktop and a phone width (``desktop.png``, ``phone.png`` in the test's tmp folder) and
one of a tooltip (``hover.png``).

Chromium: ``chromium-headless-shell`` (Debian/Ubuntu package of that name; ``.ci/run`` installs it) or
``chromium``; the test is skipped when neither is on PATH. The DevTools client is ``websocket-client``.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from helpers import cleanup, wait_for
from study.analysis import noise, format as fmt
from study.analysis import pareto, report
from study.analysis.table import trials_table
from helpers import make_frame

BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium: apt-get install chromium-headless-shell")
websocket = pytest.importorskip("websocket", reason="websocket-client (the test extra)")
SIZES = {"desktop": (1280, 900, False), "phone": (390, 844, True)}


class Page:
    """One tab of a headless Chromium over the DevTools protocol: send a command, get its result; events
    that arrive meanwhile are kept in ``events``."""

    def __init__(self, tmp_path):
        self.log, self.profile = open(tmp_path / "chromium.log", "wb"), str(tmp_path / "profile")
        self.proc = subprocess.Popen(   # --no-sandbox: CI runs as root; the page is our own local file
            [BROWSER, "--headless", "--no-sandbox", "--remote-debugging-port=0", "--no-first-run",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        line = wait_for(lambda: re.search(r"DevTools listening on (ws://\S+)", (tmp_path / "chromium.log")
                                          .read_text(errors="replace")), 60, "Chromium's DevTools address")
        port = line.group(1).split(":")[2].split("/")[0]
        targets = wait_for(lambda: [t for t in self._json(port) if t["type"] == "page"], 30, "a page target")
        self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=30)
        self.next_id, self.events = 0, []

    @staticmethod
    def _json(port):
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
            return json.loads(answer.read())

    def send(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, (method, msg["error"])
                return msg["result"]
            self.events.append(msg)

    def js(self, expression: str):
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in out, out
        return out["result"].get("value")

    def close(self):
        self.ws.close()
        # /usr/bin/chromium* is a shell wrapper: stop the whole session we started (the browser and its
        # zygote, GPU and renderer processes), by pid, and check that none is left
        cleanup([self.proc.pid], self.profile)
        self.log.close()


@pytest.fixture(scope="module")
def page_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("page")
    report.write_report(make_frame(), out)
    return out


@pytest.fixture
def page(tmp_path):
    tab = Page(tmp_path)
    yield tab
    tab.close()


def load(page: Page, url: str, size: str) -> None:
    width, height, mobile = SIZES[size]
    page.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
              mobile=mobile)
    page.send("Page.enable")
    page.send("Page.navigate", url=url)
    wait_for(lambda: page.js("document.readyState") == "complete", 30, "the page to load")


def screenshot(page: Page, path) -> None:
    shot = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def expected_tip(row: pd.Series) -> list[str]:
    """Lines the tooltip must hold for a trial: its id, metrics and hyperparameters, formatted as on the page."""
    keys = ["val_acc", "test_acc", "train_time_s", "params_no_embedding"]
    keys += [k for k in row.index if str(k).startswith("config/") and not fmt.is_missing(row[k])]
    return [row["trial_id"], *(f"{k}\t{fmt.cell(row[k])}" for k in keys)]


def test_marks_fronts_hover_and_no_network(page, page_files, tmp_path):
    url = (page_files / "pareto.html").resolve().as_uri()
    page.send("Network.enable")
    load(page, url, "desktop")
    requests = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    assert requests == [url], f"the page fetched more than itself: {requests}"

    # marks are configurations (a search trial with its repeats), as the report computes them
    runs = trials_table(make_frame())
    splits = noise.Splits.guessed(runs)
    t = pareto.mark_constant(noise.configurations(runs, splits), splits.constant_val)
    t = t.set_index(t["trial_id"].astype(str), drop=False)
    points = json.loads((page_files / "pareto.json").read_text())["fronts"]
    fronts = {cost: [p["trial_id"] for p in pts] for cost, pts in points.items()}
    charts = page.js("[...document.querySelectorAll('svg.pareto')].map(s => s.dataset.cost)")
    assert charts == list(fronts)
    for cost, ids in fronts.items():
        marks = page.js(f"[...document.querySelectorAll('svg.pareto[data-cost=\"{cost}\"] circle.trial')]"
                        ".map(c => [c.dataset.trial, c.dataset.status])")
        finished = sorted(t.loc[pareto.measured(t, cost), "trial_id"])  # below the constant too (crossed out)
        assert sorted(i for i, s in marks if s in pareto.FINISHED) == finished, cost   # one mark each
        assert len(marks) == len({i for i, _ in marks})                                 # no doubles
        front = page.js(f"[...document.querySelectorAll('svg.pareto[data-cost=\"{cost}\"] path.front')]"
                        ".map(p => p.dataset.trials)")
        assert front == [" ".join(ids)], cost                                           # one front line

    # Hover every mark of the first chart with a real mouse move: the tooltip shows that trial.
    first = next(iter(fronts))
    count = page.js(f"document.querySelectorAll('svg.pareto[data-cost=\"{first}\"] circle.trial').length")
    for k in range(count):
        where = page.js(f"""(() => {{
            const c = document.querySelectorAll('svg.pareto[data-cost="{first}"] circle.trial')[{k}];
            c.scrollIntoView({{block: 'center'}});
            const r = c.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
            const top = document.elementFromPoint(x, y);
            return [c.dataset.trial, x, y, top === c, top && top.outerHTML.slice(0, 120)];
        }})()""")
        trial, x, y, on_top, cover = where
        assert on_top, f"the mark of {trial} is covered by {cover}"
        page.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        tip = page.js("[getComputedStyle(tip).display, tip.innerText]")
        assert tip[0] == "block", trial
        for line in expected_tip(t.loc[trial]):
            assert line in tip[1], (trial, line, tip[1])
    shot = page.send("Page.captureScreenshot", format="png")       # the last tooltip, as a reader sees it
    (tmp_path / "hover.png").write_bytes(base64.b64decode(shot["data"]))
    page.send("Input.dispatchMouseEvent", type="mouseMoved", x=2, y=2)
    assert page.js("getComputedStyle(tip).display") == "none"      # leaving the mark hides it

    for size in SIZES:
        load(page, url, size)
        screenshot(page, tmp_path / f"{size}.png")
        width = page.js("document.documentElement.scrollWidth")
        assert width <= SIZES[size][0], f"{size}: the page scrolls sideways ({width} px wide)"
        assert (tmp_path / f"{size}.png").stat().st_size > 10_000
    print(f"screenshots: {tmp_path / 'desktop.png'} {tmp_path / 'phone.png'}")
    requests = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    assert set(requests) == {url}
