#!/usr/bin/env python3
"""Fault injection for Gemello (run through ops/chaos, which builds the binaries first).

Starts mosquitto, the aggregator and one agent per shared dataset (replaying it fast), injects
faults at moments drawn from --seed (kill -9 of an agent, of the aggregator, of mosquitto, each
restarted after a random pause; a network cut between the agents and the broker; an agent's
buffer filling up), then lets everything drain and compares the twin with the source files,
series by series, independently of Gemello's own CSV reader.

Last line: chaos: faults F, readings R, lost L, duplicated D, dropped-by-policy P
Exit 0 only if L == 0, D == 0 and P == 0: every agent replays a file, an input that can wait, so
a full buffer pauses it (back-pressure) and nothing of it may be dropped.
"""
import argparse
import calendar
import collections
import math
import os
import random
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import json
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATASETS = os.path.join(os.path.dirname(ROOT), "shared", "datasets")

# What each replay config reads, restated here on purpose: the check must not share Gemello's parser.
SOURCES = {
    "replay-milano-arpa": dict(
        agent="replay-milano-arpa", sensor="arpa-senato", file="milano_senato_arpa_hourly_2017_2021.csv",
        sep=",", comma=False, time=["date", "time"], fmt="%Y-%m-%d %H:%M:%S", offset=0, missing={""},
        columns={"pm25": "pm25", "temperature": "temperature", "windSpeed": "windSpeed", "rain": "precipitation"}),
    "replay-air-quality": dict(
        agent="replay-air-quality", sensor="multisensor", file="AirQualityUCI.csv",
        sep=";", comma=True, time=["Date", "Time"], fmt="%d/%m/%Y %H.%M.%S", offset=60, missing={"", "-200"},
        columns={"CO(GT)": "co", "PT08.S1(CO)": "coSensorResponse", "NMHC(GT)": "nmhc", "C6H6(GT)": "c6h6",
                 "PT08.S2(NMHC)": "nmhcSensorResponse", "NOx(GT)": "nox", "PT08.S3(NOx)": "noxSensorResponse",
                 "NO2(GT)": "no2", "PT08.S4(NO2)": "no2SensorResponse", "PT08.S5(O3)": "o3SensorResponse",
                 "T": "temperature", "RH": "relativeHumidity", "AH": "absoluteHumidity"}),
    "replay-traffic-i94": dict(
        agent="replay-traffic-i94", sensor="atr301", file="Metro_Interstate_Traffic_Volume.csv",
        sep=",", comma=False, time=["date_time"], fmt="%Y-%m-%d %H:%M:%S", offset=-360, missing={""},
        columns={"traffic_volume": "intensity", "temp": "temperature", "rain_1h": "precipitation",
                 "snow_1h": "snowHeight", "clouds_all": "cloudiness"}),
    "replay-solar-node": dict(
        agent="replay-solar-node", sensor="eno-3b06", file="ENO_Box_3B06_qeop_wsn_battery.csv",
        sep=",", comma=False, time=["Date"], fmt="%Y-%m-%d %H:%M:%S UTC", offset=0, missing={""},
        columns={"Temperature": "temperature", "Humidity": "relativeHumidity", "Light Level": "illuminance",
                 "Atmospheric Pressure": "atmosphericPressure", "Energy Consumed": "energyConsumed",
                 "Energy Generated": "energyGenerated", "Battery State": "batteryLevel", "Max Battery": "batteryMaxLevel"}),
}
TINY_QUOTA = "256KiB"  # the "disk full" fault: an agent restarted on a buffer it may not grow


def expected_readings(source):
    """Every numeric cell of the file as (series, unix ms, value), read with Python's csv module."""
    import csv
    readings = collections.Counter()
    with open(os.path.join(DATASETS, source["file"]), newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter=source["sep"])
        header = [h.strip() for h in next(rows)]
        time_at = [header.index(c) for c in source["time"]]
        columns = [(header.index(c), a) for c, a in source["columns"].items()]
        for row in rows:
            try:
                text = " ".join(row[i].strip() for i in time_at)
                stamp = calendar.timegm(time.strptime(text, source["fmt"])) - source["offset"] * 60
            except (ValueError, IndexError):
                continue  # separator-only rows, blank lines
            for index, attribute in columns:
                cell = row[index].strip() if index < len(row) else ""
                if cell in source["missing"]:
                    continue
                try:
                    value = float(cell.replace(",", ".") if source["comma"] else cell)
                except ValueError:
                    continue
                if not math.isfinite(value):
                    continue
                if value == -200 and "-200" in source["missing"]:
                    continue
                readings[(f"{source['sensor']}/{attribute}", stamp * 1000, value)] += 1
    return readings


def twin_readings(binary, store, agent):
    """Every reading of `agent` in the twin store, as the aggregator's own export reads them
    (the history is compressed per series: docs/history-format.md)."""
    out = subprocess.run([binary, "--config", os.path.join(ROOT, "aggregator-config", "aggregator.yaml"), "--store", store,
                          "--export-history", agent], check=True, capture_output=True, text=True).stdout
    found = collections.Counter()
    for line in out.splitlines():
        series, ts, value = line.split("\t")
        if series.endswith("/airQualityIndex"):
            continue  # derived by the aggregator (docs/history-format.md), not in the agent's file
        found[(series, int(ts), float(value))] += 1
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


class Proxy:
    """A TCP relay between the agents and the broker; cut() drops every connection and refuses new ones."""

    def __init__(self, listen, target):
        self.listen, self.target = listen, target
        self.lock = threading.Lock()
        self.server = None
        self.sockets = []
        self.stopped = False

    def start(self):
        with self.lock:
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            for attempt in range(100):  # the cut listener may take a moment to release the port
                try:
                    server.bind(("127.0.0.1", self.listen))
                    break
                except OSError:
                    if attempt == 99:
                        raise
                    time.sleep(0.05)
            server.listen(64)
            self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            if self.server:
                try:
                    self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it
                except OSError:
                    pass
                self.server.close()
                self.server = None
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets = []

    def restore(self):
        if self.server is None:
            self.start()


class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.bin = args.bin
        self.work = args.work
        self.broker_port, self.proxy_port, self.receiver_port = free_port(), free_port(), free_port()
        # One aggregator, or the members of one share group on one PostgreSQL store.
        self.aggregators = [f"aggregator-{n}" for n in range(1, args.aggregators + 1)] if args.aggregators > 1 else ["aggregator"]
        self.http_ports = {name: free_port() for name in self.aggregators}
        self.processes = {}
        self.proxy = Proxy(self.proxy_port, self.broker_port)
        self.faults = collections.Counter()
        self.stops = {}  # agent name -> its last stop line
        self.store = os.path.join(self.work, "twin.sqlite")
        if args.store == "postgres":
            # A server of its own for the run (never killed by the faults: the store is the ground truth).
            self.store = subprocess.run([os.path.join(ROOT, "ops", "lib", "postgres"), "start", os.path.join(self.work, "postgres")],
                                        check=True, capture_output=True, text=True).stdout.strip()

    def log(self, message):
        print(f"[{time.time() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)

    # --- processes -------------------------------------------------------------------------
    def spawn(self, name, argv, log):
        self.kill(name)  # overlapping faults: never two processes on one buffer, port or store
        out = open(os.path.join(self.work, log), "ab")
        self.processes[name] = subprocess.Popen(argv, stdout=out, stderr=out, start_new_session=True)

    def start_broker(self):
        conf = os.path.join(self.work, "mosquitto.conf")
        with open(os.path.join(ROOT, "ops", "mosquitto.conf")) as f, open(conf, "w") as out:
            out.write(f.read() + f"\nlistener {self.broker_port} 127.0.0.1\n")
        self.spawn("broker", [self.args.mosquitto, "-c", conf], "mosquitto.log")
        if not wait_port(self.broker_port, 10):
            sys.exit("chaos: mosquitto did not start; see mosquitto.log")

    def start_receiver(self):
        """The Control Room's stand-in (ops/lib/cap-receiver): its log survives its restarts."""
        self.spawn("receiver", [os.path.join(ROOT, "ops", "lib", "cap-receiver"), str(self.receiver_port),
                                os.path.join(self.work, "control-room.jsonl")], "control-room.log")
        if not wait_port(self.receiver_port, 10):
            sys.exit("chaos: the CAP receiver did not start; see control-room.log")

    def series_rules(self):
        """The shipped rules without the silent and fleet ones (a share group judges series rules only)."""
        text = open(os.path.join(ROOT, "aggregator-config", "rules.yaml")).read()
        head, *blocks = text.split("\n  - name:")
        kept = [b for b in blocks if not any(k in b for k in ("silent:", "agent-offline:", "agents-offline:"))]
        path = os.path.join(self.work, "rules-series.yaml")
        with open(path, "w") as out:
            out.write(head + "".join("\n  - name:" + b for b in kept) + "\n")
        return path

    def aggregator_config(self, name):
        """The shipped config with its alerts sent to the receiver as CAP; for a share group's member
        a config naming its client id and group, with the series rules."""
        path = os.path.join(self.work, f"{name}.yaml")
        alerts = lambda rules: (f"\nalerts:\n  rules: {rules}\n  sinks:\n    - name: control-room\n      type: webhook\n"
                                f"      url: http://127.0.0.1:{self.receiver_port}/cap\n      format: cap\n")
        if len(self.aggregators) == 1:
            shipped = open(os.path.join(ROOT, "aggregator-config", "aggregator.yaml")).read()
            shipped = shipped[:shipped.index("\nalerts:")] if "\nalerts:" in shipped else shipped
            # The harness reads the API without a token (its broker and API are loopback-only).
            shipped = "\n".join(l for l in shipped.split("\n") if "tokens-file:" not in l)
            with open(path, "w") as out:
                out.write(shipped + alerts(os.path.join(ROOT, "aggregator-config", "rules.yaml")))
            return path
        with open(path, "w") as out:
            out.write(f"client-id: {name}\nstore:\n  kind: postgres\n  url: {self.store}\ningest:\n  share-group: chaos\n"
                      + alerts(self.series_rules()))
        return path

    def start_aggregator(self, name=None):
        for member in [name] if name else self.aggregators:
            self.spawn(member, [os.path.join(self.bin, "gemello-aggregator"), "--config", self.aggregator_config(member),
                                "--broker", f"mqtt://127.0.0.1:{self.broker_port}",
                                "--store", self.store, "--http-port", str(self.http_ports[member])],
                       f"{member}.log")

    def agent_config(self, name, tiny):
        """The shipped replay config with absolute paths, a short ack timeout, a 2 s live window (so
        outages of a few seconds leave a backlog and live-first sending under its rate cap runs
        through every kind of fault), and (tiny) a 256 KiB quota."""
        text = open(os.path.join(ROOT, "agent-config", f"{name}.yaml")).read()
        dataset = os.path.join(DATASETS, SOURCES[name]["file"])
        text = re.sub(r"(?m)^(\s*file:).*$", lambda m: f"{m.group(1)} {dataset}", text)
        extra = f"  max-bytes: {TINY_QUOTA}\n" if tiny else ""
        text = re.sub(r"(?m)^buffer:\n", "buffer:\n" + extra, text)
        text += "\npublisher:\n  ack-timeout: 5s\n  live-window: 2s\n  backlog-rate: 128KiB/s\n"
        path = os.path.join(self.work, f"{name}{'-tiny' if tiny else ''}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_agent(self, name, tiny=False):
        self.spawn(name, [os.path.join(self.bin, "gemello-agent"), "--config", self.agent_config(name, tiny),
                          "--broker", f"mqtt://127.0.0.1:{self.proxy_port}",
                          "--buffer", os.path.join(self.work, f"{name}.sqlite"),
                          "--replay-speed", str(self.args.speed), "--drain-timeout", "600"], f"{name}.log")

    def kill(self, name):
        process = self.processes.get(name)
        if process and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # --- the run ---------------------------------------------------------------------------
    def schedule(self):
        kinds = ["kill-agent", "kill-aggregator", "kill-broker", "network-cut", "disk-full", "receiver-down"]
        moments = sorted(self.rng.uniform(2, self.args.window) for _ in range(self.args.faults))
        # Every kind at least once when there are enough faults, the rest at random, in random order.
        chosen = (kinds if self.args.faults >= len(kinds) else []) + [
            self.rng.choice(kinds) for _ in range(self.args.faults - (len(kinds) if self.args.faults >= len(kinds) else 0))]
        self.rng.shuffle(chosen)
        plan = []
        for moment, kind in zip(moments, chosen):
            if kind == "disk-full":
                # Only a replay still producing can fill its buffer: the two long ones; long enough to fill it.
                plan.append((moment, kind, self.rng.choice(["replay-milano-arpa", "replay-traffic-i94"]), self.rng.uniform(10, 20)))
            elif kind == "receiver-down":
                # The Control Room's receiver gone long enough for the alert outbox to back off and queue.
                plan.append((moment, kind, None, self.rng.uniform(10, 30)))
            else:
                plan.append((moment, kind, self.rng.choice(list(SOURCES)), self.rng.uniform(0.5, self.args.max_pause)))
        return plan

    def run(self):
        self.t0 = time.time()
        self.start_broker()
        self.proxy.start()
        self.start_receiver()
        self.start_aggregator()
        for name in self.aggregators:
            if not wait_port(self.http_ports[name], 30):
                sys.exit(f"chaos: {name} did not start; see {name}.log")
        for name in SOURCES:
            self.start_agent(name)
        pending = []  # (time, action)
        for moment, kind, agent, pause in self.schedule():
            pending.append((moment, kind, agent, pause))
        restores = []
        while pending or restores:
            now = time.time() - self.t0
            due = [r for r in restores if r[0] <= now]
            for r in due:
                restores.remove(r)
                r[1]()
            if pending and pending[0][0] <= now:
                _, kind, agent, pause = pending.pop(0)
                self.faults[kind] += 1
                restores.append((now + pause, self.inject(kind, agent, pause)))
            time.sleep(0.05)
        self.log(f"faults done: {dict(self.faults)}; draining")
        self.drain()

    def inject(self, kind, agent, pause):
        self.log(f"fault {sum(self.faults.values())}: {kind}{' ' + agent if 'agent' in kind or kind == 'disk-full' else ''} for {pause:.1f}s")
        if kind == "kill-agent":
            self.kill(agent)
            return lambda: self.start_agent(agent)
        if kind == "kill-aggregator":
            member = self.rng.choice(self.aggregators)
            self.log(f"  killing {member}")
            self.kill(member)
            return lambda: self.start_aggregator(member)
        if kind == "kill-broker":
            self.kill("broker")
            return self.start_broker
        if kind == "network-cut":
            self.proxy.cut()
            return self.proxy.restore
        if kind == "receiver-down":
            self.kill("receiver")
            return self.start_receiver
        # disk-full: the agent restarts on a buffer it may not grow past 256 KiB, with its link cut so
        # the buffer must fill; then the link and its normal quota come back.
        self.kill(agent)
        self.proxy.cut()
        self.start_agent(agent, tiny=True)

        def restore():
            self.proxy.restore()
            self.kill(agent)
            self.start_agent(agent)
        return restore

    def drain(self):
        self.proxy.restore()
        for name in list(SOURCES) + self.aggregators + ["broker", "receiver"]:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                if name in self.aggregators:
                    self.start_aggregator(name)
                elif name == "broker":
                    self.start_broker()
                elif name == "receiver":
                    self.start_receiver()
                else:
                    self.start_agent(name)
        # Each replay finishes (a restarted one resumes where its buffer ended) ...
        deadline = time.time() + self.args.drain_timeout
        for name in SOURCES:
            log = os.path.join(self.work, f"{name}.log")
            while time.time() < deadline:
                text = open(log, errors="replace").read()
                if text.rfind("input finished") > text.rfind("agent starting"):
                    break
                time.sleep(0.5)
        # ... then each agent stops gracefully, waiting for its buffer to empty.
        for name in SOURCES:
            self.processes[name].send_signal(signal.SIGTERM)
        for name in SOURCES:
            try:
                self.processes[name].wait(timeout=max(10, deadline - time.time()))
            except subprocess.TimeoutExpired:
                self.kill(name)
            lines = [l for l in open(os.path.join(self.work, f"{name}.log"), errors="replace") if "gemello-agent: stopped" in l]
            self.stops[name] = lines[-1].strip() if lines else ""
        # The alert outbox reaches the receiver (its retries back off to 30 s), then what the store
        # says it sent is kept for the check.
        api = f"http://127.0.0.1:{self.http_ports[self.aggregators[0]]}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                metrics = urllib.request.urlopen(f"{api}/metrics", timeout=5).read().decode()
                queued = sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("gemello_alert_sink_queued"))
                if queued == 0:
                    break
            except OSError:
                pass
            time.sleep(1)
        try:
            self.alerts = json.loads(urllib.request.urlopen(f"{api}/alerts?all=true&limit=100000", timeout=10).read())
        except OSError as e:
            self.log(f"cannot read the alerts: {e}")
            self.alerts = None
        for name in self.aggregators + ["broker", "receiver"]:
            self.processes[name].send_signal(signal.SIGTERM)
            self.processes[name].wait(timeout=30)

    def verify(self):
        store = self.store
        total = lost = duplicated = dropped = 0
        ok = True
        for name, source in SOURCES.items():
            expected = expected_readings(source)
            found = twin_readings(os.path.join(self.bin, "gemello-aggregator"), store, source["agent"])
            missing = sum((expected - found).values())
            extra = sum((found - expected).values())
            stop = self.stops.get(name, "")
            match = re.search(r"droppedTotal=(\d+)", stop)
            reported = int(match.group(1)) if match else 0
            buffered = int(re.search(r"buffered=(\d+)", stop).group(1)) if "buffered=" in stop else -1
            unaccounted = missing - reported
            total += sum(expected.values())
            duplicated += extra
            dropped += reported
            lost += max(0, unaccounted)
            # Every agent here replays a file, an input that can wait: a full buffer pauses it
            # (back-pressure) and the overflow policy may drop none of its readings.
            status = "ok" if extra == 0 and unaccounted == 0 and buffered == 0 and reported == 0 else "FAIL"
            ok = ok and status == "ok"
            series = {k[0] for k in expected}
            print(f"{name}: {len(series)} series, {sum(expected.values())} readings in the file, {sum(found.values())} in the twin, "
                  f"missing {missing}, extra {extra}, reported dropped {reported}, left in buffer {buffered}: {status}")
        backlogs = 0
        for name in SOURCES:
            log = os.path.join(self.work, f"{name}.log")
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    backlogs += sum("draining the backlog behind them" in line for line in f)
        print(f"live first: agents drained a backlog behind fresh readings {backlogs} times")
        rows = []
        path = os.path.join(self.work, "control-room.jsonl")
        if os.path.exists(path):
            rows = [json.loads(l) for l in open(path)]
        got = {r["id"] for r in rows}
        sent = {"%s.%d" % (a["id"], i) for a in (self.alerts or []) for i in range(a["messages"])}
        invalid = sum(1 for r in rows if r["valid"] is False)
        alerts_lost = len(sent - got) + (1 if self.alerts is None else 0)
        alerts_ok = alerts_lost == 0 and invalid == 0 and got <= sent
        print(f"alerts: {len(self.alerts or [])} raised, {len(sent)} messages sent, {len(got)} at the receiver "
              f"(lost {alerts_lost}, resent {len(rows) - len(got)}, invalid CAP {invalid}, unknown {len(got - sent)})")
        print(f"faults by kind: {dict(sorted(self.faults.items()))}; seed {self.args.seed}; {time.time() - self.t0:.0f} s")
        print(f"chaos: faults {sum(self.faults.values())}, readings {total}, lost {lost}, duplicated {duplicated}, dropped-by-policy {dropped}")
        return ok and lost == 0 and duplicated == 0 and alerts_ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--speed", type=float, default=2_000_000, help="replay speed, data seconds per second")
    parser.add_argument("--window", type=float, default=80, help="seconds over which the faults are spread")
    parser.add_argument("--max-pause", type=float, default=6, help="longest outage or restart pause, seconds")
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--mosquitto", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--aggregators", type=int, default=1,
                        help="aggregators sharing the agents' batches (a share group; needs --store postgres)")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite",
                        help="the twin's backend: the embedded file, or a PostgreSQL server started for the run")
    args = parser.parse_args()
    if args.aggregators > 1 and args.store != "postgres":
        parser.error("--aggregators 2 or more needs --store postgres (one store shared by the group)")
    if args.seed is None:
        args.seed = random.randrange(1, 1_000_000)
    chaos = Chaos(args)
    try:
        chaos.run()
    finally:
        chaos.proxy.cut()
        for name in list(chaos.processes):
            chaos.kill(name)
    try:
        ok = chaos.verify()
    finally:
        if args.store == "postgres":
            subprocess.run([os.path.join(ROOT, "ops", "lib", "postgres"), "stop", os.path.join(args.work, "postgres")], check=False)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
