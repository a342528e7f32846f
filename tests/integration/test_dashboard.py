"""The dashboard in a real browser: rdg-sim fills a gateway with a compressed half day of a
county medical community, headless Debian Chromium loads /dashboard (the token becomes a
cookie, the page's script fetches its data and draws with the Chart.js the gateway serves), and
the test reads the rendered DOM: every chart drew data points, the tiles and the breach table
agree with /dashboard/data.json. A screenshot is kept in RDG_ARTIFACT_DIR (build/test-artifacts)."""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import harness

CHROMIUM = shutil.which("chromium")


class DashboardTest(harness.GatewayTestCase):
    injected_clock = True
    extra_config = "housekeeping_seconds: 1\n"

    def chromium(self, profile, *args, browser_lang="zh-CN", query=""):
        url = (f"{self.gateway.monitoring_url}/dashboard?token={self.gateway.monitoring_token}"
               f"{query}")
        # --virtual-time-budget: the page's fetch and drawing finish before the DOM is dumped.
        # 1280×800: an administrator's laptop; the browser asks for Chinese unless told otherwise.
        proc = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--window-size=1280,800", "--hide-scrollbars",
             f"--lang={browser_lang}", f"--accept-lang={browser_lang}",
             "--virtual-time-budget=15000", *args, url],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        return proc.stdout

    @unittest.skipIf(CHROMIUM is None, "chromium is not installed (deploy/install-deps.sh does)")
    def test_dashboard_renders_a_simulated_day(self):
        sim = subprocess.run(
            [os.path.join(harness.BIN_DIR, "rdg-sim"), "--gateway", self.gateway.address,
             "--pki", self.pki, "--clock-offset-file", self.offset_file, "--speed", "2880",
             "--hours", "12", "--exams-per-day", "500", "--seed", "7"],
            capture_output=True, text=True, timeout=300)
        self.assertEqual(sim.returncode, 0, sim.stdout + sim.stderr)
        uploaded = int(re.search(r"(\d+) exams uploaded", sim.stdout).group(1))
        reported = int(re.search(r"(\d+) final reports", sim.stdout).group(1))
        self.assertGreater(uploaded, 50, sim.stdout)
        self.assertGreater(reported, 20, sim.stdout)
        # Institutions named in Chinese, as a county's configuration names them: the page shows
        # those names as written (the gateway restarts on the same data with the new names).
        self.gateway.stop()
        with open(self.gateway.config_path) as f:
            config = f.read()
        for english, chinese in (("Qingshui County People's Hospital", "清水县人民医院"),
                                 ("Shuangqiao Township Health Centre", "双桥镇卫生院")):
            self.assertIn(f'name: "{english}"', config)
            config = config.replace(f'name: "{english}"', f'name: "{chinese}"')
        with open(self.gateway.config_path, "w") as f:
            f.write(config)
        self.gateway.start()

        request = urllib.request.Request(
            self.gateway.monitoring_url + "/dashboard/data.json",
            headers={"Authorization": "Bearer " + self.gateway.monitoring_token})
        with urllib.request.urlopen(request, timeout=30) as r:
            data = json.load(r)

        profile = tempfile.mkdtemp(prefix="rdg-chromium-", dir=self.workdir)
        dom = self.chromium(profile, "--dump-dom")
        self.assertIn('data-state="ready"', dom, dom[-3000:])
        for chart in ("tat-chart", "queue-chart", "sla-chart"):
            with self.subTest(chart=chart):
                m = re.search(rf'<canvas id="{chart}"[^>]*data-points="(\d+)"', dom)
                self.assertIsNotNone(m, f"{chart} was not drawn")
                self.assertGreater(int(m.group(1)), 0, f"{chart} drew no data")
        # Times for people in the configured zone (Asia/Shanghai), not UTC.
        self.assertEqual(data["time_zone"], "Asia/Shanghai (CST)")
        self.assertTrue(data["generated_at"].endswith("+08:00"), data["generated_at"])
        self.assertTrue(all(b["due_at"].endswith("+08:00") for b in data["breaches"]))
        self.assertIn('id="due-header" title="Asia/Shanghai (CST)">应完成 (CST)<', dom)
        # Chinese, because the browser asks for it; nothing clipped at 1280 px.
        self.assertIn('<html lang="zh-CN">', dom)
        self.assertIn(">24 小时内完成环节<", dom)
        self.assertIn('data-clipped="0"', dom)
        # Names, not ids: every breach row names its queue and origin as the configuration does.
        cells = re.findall(r"<tr class=\"\w+\">((?:<td[^>]*>.*?</td>){8})</tr>", dom)
        for b, row in zip(data["breaches"], cells):
            texts = re.findall(r"<td[^>]*>(.*?)</td>", row)
            self.assertEqual(texts[4], html.escape(b["queue_name"], quote=False), row)
            self.assertEqual(texts[5], html.escape(b["origin_name"], quote=False), row)
            self.assertNotEqual(b["origin_name"], b["origin"])
        for q in data["queues"]:
            self.assertIn(" · ", q["queue_name"])  # "清水县人民医院 · imaging"
        self.assertIn("清水县人民医院 · imaging", [q["queue_name"] for q in data["queues"]])
        self.assertIn("清水县人民医院", [s["county_name"] for s in data["tat"]["series"]])
        for b in data["breaches"]:
            if b["origin"] == "clinic-a1":
                self.assertEqual(b["origin_name"], "双桥镇卫生院")
        self.assertTrue(any(s["county_name"] != s["county"] for s in data["tat"]["series"]))
        # English when asked for (the switch's choice, or ?lang=en), nothing clipped either.
        english = self.chromium(tempfile.mkdtemp(prefix="rdg-chromium-", dir=self.workdir),
                                "--dump-dom", browser_lang="en-US")
        self.assertIn('<html lang="en">', english)
        self.assertIn('id="due-header" title="Asia/Shanghai (CST)">Due (CST)<', english)
        self.assertIn('data-clipped="0"', english)
        forced = self.chromium(tempfile.mkdtemp(prefix="rdg-chromium-", dir=self.workdir),
                               "--dump-dom", query="&lang=en")
        self.assertIn('<html lang="en">', forced)
        completed = re.search(r'id="tile-completed">(\d+)<', dom)
        self.assertIsNotNone(completed)
        self.assertGreater(int(completed.group(1)), 0)
        # Most overdue first: a breach detected between the two reads can only add rows at the end.
        rows = re.findall(r"<td>(ex-[0-9a-f]+)</td>", dom)
        expected = [b["exam_id"] for b in data["breaches"]]
        # (data.json was read first, so the table may hold more rows, never fewer.)
        self.assertGreaterEqual(len(rows), len(expected), "the table lost breaches of data.json")
        self.assertEqual(rows[:len(expected)], expected, "the table and data.json disagree")
        if not rows:
            self.assertIn("没有未关闭的超时", dom)

        artifacts = os.environ.get("RDG_ARTIFACT_DIR", self.workdir)
        os.makedirs(artifacts, exist_ok=True)
        shot = os.path.join(artifacts, "dashboard.png")
        self.chromium(profile, f"--screenshot={shot}")
        with open(shot, "rb") as f:
            png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(png), 20000)  # a drawn page, not a blank one
        print(f"\ndashboard screenshot: {shot}")


if __name__ == "__main__":
    unittest.main()
