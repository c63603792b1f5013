"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from real inputs:
the shipped contracts in schemas/ (events encoded with fastavro, an Avro implementation
independent of eventfold's), the pipeline files in pipelines/, collector batches like the
ones apps send, and registry requests built from the shipped schemas and the compatibility
pairs in tests/data/compat_pairs.json.

Run from the repository root with the project's Python tools:
    .tools/venv/bin/python tests/fuzz/make_corpus.py
It rewrites the seed files it makes (named seed-*) and leaves every other file (inputs that
once crashed a target, kept as regression seeds) alone.
"""

import gzip
import io
import json
import pathlib
import struct

import fastavro

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
# The collector target's fixed server clock (NOW_MS in fuzz_targets/collector_body.rs).
NOW_MS = 1_764_000_000_000


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / f"seed-{name}").write_bytes(data)


def contract(version):
    text = (ROOT / "schemas" / "interaction" / f"v{version}.avsc").read_text()
    return text, fastavro.parse_schema(json.loads(text))


def events():
    base = {
        "event_id": "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d",
        "event_type": "add_to_cart",
        "user_id": "u1",
        "session_id": "s1",
        "item_id": "sku-1",
        "occurred_at": NOW_MS - 1000,
        "app": "web",
        "properties": {"ref": "mail"},
    }
    yield "add_to_cart", dict(base, value=12.5, device={"platform": "ios", "os_version": "18", "app_version": None})
    yield "page_view", dict(base, event_type="page_view", item_id=None, properties={}, value=None,
                            device={"platform": "web", "os_version": None, "app_version": "2.1"})
    yield "purchase", dict(base, event_type="purchase", value=99.99, properties={"q": "shoes", "page": "2"},
                           device={"platform": "android", "os_version": "14", "app_version": "7.0.1"})
    yield "play_negative_time", dict(base, event_type="play", occurred_at=-5, value=-0.0,
                                     device={"platform": "unknown", "os_version": None, "app_version": None})


def datum(schema, record):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def avro_seeds():
    _, v1 = contract(1)
    _, v2 = contract(2)
    for name, event in events():
        v1_event = {k: v for k, v in event.items() if k not in ("value", "device")}
        written = {1: datum(v1, v1_event), 2: datum(v2, event)}
        for writer, data in written.items():
            for reader in (1, 2):
                # avro_decode: the first byte picks writer (bit 0) and reader (bit 1).
                pair = (writer - 1) | ((reader - 1) << 1)
                write("avro_decode", f"{name}-v{writer}-to-v{reader}", bytes([pair]) + data)
            # wire_format: the framed value as the worker reads it from Kafka.
            write("wire_format", f"{name}-v{writer}", b"\x00" + struct.pack(">I", writer) + data)
    write("wire_format", "truncated", b"\x00\x00\x00")
    write("wire_format", "wrong-magic", b"\x01\x00\x00\x00\x01\x02")
    write("avro_decode", "truncated", bytes([3]) + written[2][: len(written[2]) // 2])


def collector_seeds():
    valid = [event for _, event in events() if event["occurred_at"] > 0]
    for event in valid:
        event["device"] = {k: v for k, v in event["device"].items() if v is not None}
    array = json.dumps(valid).encode()
    ndjson = "\n".join(json.dumps(e) for e in valid).encode() + b"\n"
    # The first byte: bit 0 NDJSON, bits 1-2 identity / gzip here / sent as gzip / unknown.
    write("collector_body", "array", b"\x00" + array)
    write("collector_body", "ndjson", b"\x01" + ndjson)
    write("collector_body", "array-gzip", b"\x02" + array)
    write("collector_body", "ndjson-sent-as-gzip", b"\x05" + gzip.compress(ndjson))
    minimal = {"event_id": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e", "event_type": "click", "user_id": "u",
               "session_id": "s", "occurred_at": NOW_MS, "app": "web"}
    write("collector_body", "minimal", b"\x00" + json.dumps([minimal]).encode())
    invalid = [dict(minimal, event_id="abc", event_type="teleport", colour="red", occurred_at=0,
                    properties={"k": 1}, device={"model": "x"}), 7, dict(minimal, value="12")]
    write("collector_body", "invalid-events", b"\x00" + json.dumps(invalid).encode())
    write("collector_body", "not-an-array", b"\x00" + json.dumps(minimal).encode())


def pipeline_seeds():
    for path in sorted((ROOT / "pipelines").glob("*.yaml")):
        write("pipeline_file", path.stem, path.read_bytes())
    write("pipeline_file", "small",
          "name: t\nsource: {topic: t, reader_schema: interaction/v1.avsc}\n"
          "event_time: {field: occurred_at, watermark_delay: 5s, grace: 30s, idle_after: 1m}\n"
          "aggregates:\n"
          "  - {name: per_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n"
          "  - {name: users, window: {hopping: {size: 2m, hop: 1m}}, aggregate: count_distinct, field: user_id}\n"
          "  - {name: top, window: {session: {gap: 30m}}, aggregate: top_k, field: item_id, k: 3}\n"
          "projections:\n  - {name: users_p, kind: user}\n")
    write("pipeline_file", "problems",
          "name: Bad-Name\nsource: {topic: '', reader_schema: interaction/v9.avsc}\n"
          "event_time: {field: app, watermark_delay: 5x, grace: -1s}\n"
          "aggregates:\n"
          "  - {name: a, window: {tumbling: 0s, session: {gap: 1m}}, aggregate: median, field: value, k: 3}\n"
          "  - {name: a, window: {hopping: {size: 1m, hop: 2m}}, aggregate: percentiles, field: value,"
          " quantiles: [0.5, 1.5]}\n")


def request(method, path, body=""):
    return f"{method} {path}\n{body}"


def registry_seeds():
    v1, _ = contract(1)
    v2, _ = contract(2)
    subject = "/subjects/interactions-value"
    # Requests are separated by a line ~~~; a body "avro:<text>" is sent as {"schema": text}.
    write("registry_request", "contracts", "\n~~~\n".join([
        request("POST", f"{subject}/versions", "avro:" + v1),
        request("POST", f"{subject}/versions", json.dumps({"schema": v2, "schemaType": "AVRO"})),
        request("GET", f"{subject}/versions"),
        request("GET", f"{subject}/versions/latest"),
        request("GET", f"{subject}/versions/1/schema"),
        request("POST", subject, "avro:" + v1),
        request("POST", f"/compatibility{subject}/versions/latest?verbose=true", "avro:" + v2),
        request("GET", "/schemas/ids/2/versions"),
        request("DELETE", f"{subject}/versions/1"),
        request("DELETE", f"{subject}/versions/1?permanent=true"),
        request("GET", "/subjects?deleted=true"),
    ]))
    write("registry_request", "config", "\n~~~\n".join([
        request("PUT", "/config", json.dumps({"compatibility": "FULL_TRANSITIVE"})),
        request("PUT", "/config/other-value", json.dumps({"compatibility": "none"})),
        request("GET", "/config/other-value?defaultToGlobal=true"),
        request("DELETE", "/config/other-value"),
        request("DELETE", "/config"),
        request("GET", "/config"),
        request("GET", "/schemas/types"),
        request("GET", "/mode"),
    ]))
    write("registry_request", "malformed", "\n~~~\n".join([
        request("POST", f"{subject}/versions", '{"schema": "{\\"type\\": \\"record\\"}"}'),
        request("POST", f"{subject}/versions", json.dumps({"schema": v1, "schemaType": "PROTOBUF"})),
        request("POST", f"{subject}/versions", json.dumps({"schema": v1, "references": [{"name": "x"}]})),
        request("POST", f"{subject}/versions", "not json"),
        request("GET", f"{subject}/versions/0"),
        request("GET", "/schemas/ids/abc"),
        request("PUT", "/config", json.dumps({"compatibility": "SIDEWAYS"})),
    ]))
    pairs = json.loads((ROOT / "tests" / "data" / "compat_pairs.json").read_text())
    complex_pairs = [p for p in pairs if isinstance(p["writer"], (dict, list))]
    for pair in complex_pairs[:: max(1, len(complex_pairs) // 12)]:
        path = f"/subjects/{pair['name']}"
        write("registry_request", f"compat-{pair['name']}", "\n~~~\n".join([
            request("PUT", f"/config/{pair['name']}", json.dumps({"compatibility": "FULL"})),
            request("POST", f"{path}/versions", "avro:" + json.dumps(pair["writer"])),
            request("POST", f"/compatibility{path}/versions?verbose=true", "avro:" + json.dumps(pair["reader"])),
            request("POST", f"{path}/versions", "avro:" + json.dumps(pair["reader"])),
        ]))


if __name__ == "__main__":
    avro_seeds()
    collector_seeds()
    pipeline_seeds()
    registry_seeds()
