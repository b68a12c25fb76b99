"""An AWS app on boto3 (SQS and SNS), traced by opentelemetry-instrumentation-botocore, against moto.

``BotocoreInstrumentor().instrument()`` in two processes. The service ``sqs-producer`` sends 8
invoices to the SQS queue ``invoices`` (visibility timeout 1 s, redrive to ``invoices-dlq`` after 2
receives), sends invoice 5 a second time (a duplicate send: SQS gives it a new MessageId), and
publishes 4 events to the SNS topic ``invoice-events``, delivered raw to the queue ``audit``, and
sends 5 credit notes in one SendMessageBatch to the queue ``credit-notes``. The service
``sqs-consumer`` (a child process) receives one message per call: it leaves invoice 3 undeleted
once, so it is received again after the visibility timeout, and its handler fails on invoice 6
every time, so SQS moves it to the dead-letter queue, where the same service receives it. Last it
receives the credit notes up to 10 per call (a batch: botocore names only the first message of each).
Ground truth goes to $EVENTSCOPE_TRUTH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import boto3  # noqa: E402
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor  # noqa: E402
from telemetry import provider, write_truth  # noqa: E402

QUEUE, DEAD, AUDIT, TOPIC, BATCH = "invoices", "invoices-dlq", "audit", "invoice-events", "credit-notes"
INVOICES = [f"invoice-{n}" for n in range(1, 9)]
DUPLICATE, EXPIRED, FAILING = "invoice-5", "invoice-3", "invoice-6"
EVENTS = 4
CREDIT_NOTES = [f"credit-{n}" for n in range(1, 6)]


def client(service: str):
    return boto3.client(service, endpoint_url=os.environ["MOTO_URL"], region_name="us-east-1")


def queue_url(sqs, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def setup(sqs, sns) -> str:
    dead = sqs.create_queue(QueueName=DEAD)["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "2"})
    sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive})
    sqs.create_queue(QueueName=BATCH)
    audit = sqs.create_queue(QueueName=AUDIT)["QueueUrl"]
    audit_arn = sqs.get_queue_attributes(QueueUrl=audit, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=audit_arn, Attributes={"RawMessageDelivery": "true"})
    return topic


def receive(sqs, url: str) -> dict | None:
    answer = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]
    )
    return (answer.get("Messages") or [None])[0]


def receive_batches(sqs, url: str, deadline: float) -> list[list[str]]:
    """Every credit note, received up to 10 per call and deleted: the MessageIds of each call."""
    calls: list[list[str]] = []
    while sum(map(len, calls)) < len(CREDIT_NOTES):
        if time.monotonic() > deadline:
            raise SystemExit(f"credit notes received: {calls}")
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if messages:
            calls.append([m["MessageId"] for m in messages])
        else:
            time.sleep(0.2)
    return calls


def consume(report_path: str) -> None:
    """The ``sqs-consumer`` service: receives until every invoice is handled or dead-lettered."""
    tracer_provider = provider("sqs-consumer")
    BotocoreInstrumentor().instrument(tracer_provider=tracer_provider)
    sqs = client("sqs")
    urls = {name: queue_url(sqs, name) for name in (QUEUE, DEAD, AUDIT)}
    receipts: dict[str, list[str]] = {QUEUE: [], DEAD: [], AUDIT: []}  # message ids, one per delivery
    ids: dict[str, str] = {}  # body -> MessageId (the duplicate send's second copy wins)
    handled: list[str] = []
    deadline = time.monotonic() + 40
    while len(handled) < len(INVOICES) or len(receipts[DEAD]) < 1 or len(receipts[AUDIT]) < EVENTS:
        if time.monotonic() > deadline:
            raise SystemExit(f"handled {handled}, received {receipts}")
        received = 0
        for name, url in urls.items():
            message = receive(sqs, url)
            if message is None:
                continue
            received += 1
            body = message["Body"]
            receipts[name].append(message["MessageId"])
            ids[body] = message["MessageId"]
            count = int(message["Attributes"]["ApproximateReceiveCount"])
            if name == QUEUE and (body == FAILING or (body == EXPIRED and count == 1)):
                continue  # not deleted: SQS hands it out again after the visibility timeout
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if name == QUEUE:
                handled.append(body)
        if not received:
            time.sleep(0.2)
    batches = receive_batches(sqs, queue_url(sqs, BATCH), deadline)
    tracer_provider.shutdown()
    with open(report_path, "w") as out:
        json.dump({"receipts": receipts, "ids": ids, "handled": handled, "batches": batches}, out)


def produce() -> None:
    tracer_provider = provider("sqs-producer")
    BotocoreInstrumentor().instrument(tracer_provider=tracer_provider)
    sqs, sns = client("sqs"), client("sns")
    topic = setup(sqs, sns)
    report_path = os.environ["EVENTSCOPE_TRUTH"] + ".consumer"
    consumer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "consume", report_path])
    url = queue_url(sqs, QUEUE)
    for body in [*INVOICES[:5], DUPLICATE, *INVOICES[5:]]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    for n in range(1, EVENTS + 1):
        sns.publish(TopicArn=topic, Message=f"audit-{n}")
    entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(CREDIT_NOTES)]
    sent = sqs.send_message_batch(QueueUrl=queue_url(sqs, BATCH), Entries=entries)["Successful"]
    if consumer.wait(timeout=60) != 0:
        raise SystemExit("the consumer failed")
    tracer_provider.shutdown()
    with open(report_path) as seen:
        consumed = json.load(seen)
    copies = Counter(consumed["receipts"][QUEUE])
    ids = consumed["ids"]
    batches = consumed["batches"]
    if max(map(len, batches)) < 2 or batches[0][0] != sent[0]["MessageId"]:
        raise SystemExit(f"no batch received, or not in the order sent: {batches}, sent {sent}")
    write_truth(
        {
            "system": "aws_sqs",
            "channel": QUEUE,
            "producer_service": "sqs-producer",
            "consumer_service": "sqs-consumer",
            "publishes": len(INVOICES) + 1,
            "messages": len(INVOICES) + 1,  # the duplicate send is a message of its own to SQS
            "deliveries": sum(copies.values()),
            # planted, and invisible to the collectors: SQS gives a duplicate send a new MessageId, and
            # nothing in the spans says that the handler failed
            "unseen": {"duplicates": {DUPLICATE: 1}, "failed": [ids[FAILING]]},
            "duplicates": {},
            "redeliveries": {message_id: n - 1 for message_id, n in copies.items() if n > 1},
            "failed": [],
            "dead_lettered": consumed["receipts"][DEAD],
            "dead_letter_channel": DEAD,
            "lost": [],
            "sns": {
                "topic": TOPIC,
                "queue": AUDIT,
                "publishes": EVENTS,
                "deliveries": len(consumed["receipts"][AUDIT]),
            },
            "batch": {
                "queue": BATCH,
                "messages": len(CREDIT_NOTES),
                "send_calls": 1,
                "receive_calls": len(batches),
            },
        }
    )


if __name__ == "__main__":
    consume(sys.argv[2]) if sys.argv[1:2] == ["consume"] else produce()
