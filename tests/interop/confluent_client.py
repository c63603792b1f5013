#!/usr/bin/env python3
"""A Kafka client nobody here wrote, for eventfold's interoperability tests (tests/interop.rs).

Uses Confluent's own Python client (confluent-kafka: librdkafka, SchemaRegistryClient,
AvroSerializer/AvroDeserializer) against eventfold's schema registry and the test broker.

    produce --brokers B --registry URL --topic T --schema FILE --events FILE.json
        Serializes each event of the JSON array with AvroSerializer (auto-registering the
        schema under <topic>-value, TopicNameStrategy), produces it keyed by user_id with an
        idempotent producer and prints {"produced": N, "schema_id": ID} (ID read from the
        Confluent wire header of the bytes produced).

    consume --brokers B --registry URL --topic T --count N [--timeout-s S] [--group G]
        Reads N records with a fresh consumer group from the earliest offset, decodes each
        with AvroDeserializer (writer schema fetched by the id in the record, no reader
        schema) and prints the decoded values as a JSON array sorted by event_id.

Prints JSON on stdout; on any failure prints a message on stderr and exits non-zero.
"""

import argparse
import datetime
import decimal
import json
import struct
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

MAGIC_BYTE = 0
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Failure(Exception):
    """A failure with a message for the user."""


def schema_id_of(payload):
    """The schema id of a value framed in the Confluent wire format (magic byte, 4-byte id)."""
    if payload is None or len(payload) < 5 or payload[0] != MAGIC_BYTE:
        raise Failure(f"value is not in the Confluent wire format: {payload[:8]!r}")
    return struct.unpack(">I", payload[1:5])[0]


def to_json(value):
    """A JSON-ready copy of a decoded Avro value (timestamps as int ms, bytes as hex)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.date):
        return (value - EPOCH.date()).days
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def produce(args):
    with open(args.schema, encoding="utf-8") as f:
        schema_str = f.read()
    with open(args.events, encoding="utf-8") as f:
        events = json.load(f)
    if not isinstance(events, list):
        raise Failure(f"{args.events}: expected a JSON array of events")

    registry = SchemaRegistryClient({"url": args.registry})
    serializer = AvroSerializer(registry, schema_str)  # default: auto.register.schemas=True
    context = SerializationContext(args.topic, MessageField.VALUE)
    producer = Producer(
        {
            "bootstrap.servers": args.brokers,
            "enable.idempotence": True,
            "acks": "all",
        }
    )

    errors = []
    delivered = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{msg.topic()}[{msg.partition()}]: {err}")
        else:
            delivered[0] += 1

    schema_ids = set()
    for index, event in enumerate(events):
        try:
            payload = serializer(event, context)
        except Exception as e:  # noqa: BLE001 - report which event failed and why
            raise Failure(f"AvroSerializer failed on event #{index} ({event.get('event_id')}): {e!r}")
        schema_ids.add(schema_id_of(payload))
        while True:
            try:
                producer.produce(
                    args.topic,
                    key=event["user_id"].encode("utf-8"),
                    value=payload,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)

    remaining = producer.flush(args.timeout_s)
    if remaining:
        raise Failure(f"{remaining} message(s) still undelivered after {args.timeout_s} s")
    if errors:
        raise Failure("delivery failed: " + "; ".join(errors[:5]))
    if delivered[0] != len(events):
        raise Failure(f"delivered {delivered[0]} of {len(events)} events")
    if len(schema_ids) > 1:
        raise Failure(f"events were framed with several schema ids: {sorted(schema_ids)}")
    print(json.dumps({"produced": delivered[0], "schema_id": next(iter(schema_ids), None)}))


def consume(args):
    registry = SchemaRegistryClient({"url": args.registry})
    deserializer = AvroDeserializer(registry)  # no reader schema: the writer schema by id
    context = SerializationContext(args.topic, MessageField.VALUE)
    group = args.group or f"interop-py-{uuid.uuid4().hex}"
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    decoded = []
    try:
        consumer.subscribe([args.topic])
        deadline = time.monotonic() + args.timeout_s
        while len(decoded) < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(
                    f"read {len(decoded)} of {args.count} records from '{args.topic}' "
                    f"within {args.timeout_s} s"
                )
            msg = consumer.poll(min(left, 1.0))
            if msg is None:
                continue
            if msg.error():
                raise Failure(f"consume failed: {msg.error()}")
            try:
                value = deserializer(msg.value(), context)
            except Exception as e:  # noqa: BLE001 - report where and why
                raise Failure(
                    f"AvroDeserializer failed on {msg.topic()}[{msg.partition()}]@{msg.offset()}: {e!r}"
                )
            decoded.append(to_json(value))
    finally:
        consumer.close()
    decoded.sort(key=lambda v: v.get("event_id", "") if isinstance(v, dict) else "")
    print(json.dumps(decoded))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--brokers", required=True, help="bootstrap servers, host:port[,…]")
        p.add_argument("--registry", required=True, help="schema registry base URL")
        p.add_argument("--topic", required=True)

    p = commands.add_parser("produce", help="serialize with AvroSerializer and produce")
    common(p)
    p.add_argument("--schema", required=True, help="Avro schema file (.avsc)")
    p.add_argument("--events", required=True, help="JSON array of events")
    p.add_argument("--timeout-s", type=float, default=30.0, help="flush timeout")
    p.set_defaults(run=produce)

    p = commands.add_parser("consume", help="consume and decode with AvroDeserializer")
    common(p)
    p.add_argument("--count", type=int, required=True, help="records to read")
    p.add_argument("--timeout-s", type=float, default=60.0, help="give up after this long")
    p.add_argument("--group", help="consumer group (default: a fresh one)")
    p.set_defaults(run=consume)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except Failure as e:
        print(f"confluent_client.py {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KafkaException as e:
        print(f"confluent_client.py {args.command}: Kafka error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - any other failure: clear message, non-zero exit
        print(f"confluent_client.py {args.command}: error: {e!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
