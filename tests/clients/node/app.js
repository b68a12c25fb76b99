// A Node.js app traced with the OpenTelemetry JS SDK, exporting over OTLP/HTTP protobuf, OTLP/HTTP JSON or
// gRPC (argv[2]: http/protobuf | http/json | grpc; the endpoint from OTEL_EXPORTER_OTLP_ENDPOINT).
//
// The service node-orders publishes 20 numbered messages (sequence 1..20, one stream) on the channel
// orders.created through an in-process queue; the service node-billing (consumer group "billing")
// processes them. Planted: the queue drops sequence 7 (lost), hands sequence 12 over twice (a
// duplicate), the handler fails on sequence 4 once (it is handed over again and then processed: a
// redelivery) and on sequence 15 every time (failed). The ground truth goes to $EVENTSCOPE_TRUTH.
"use strict";

const fs = require("node:fs");
const crypto = require("node:crypto");
const api = require("@opentelemetry/api");
const { W3CTraceContextPropagator } = require("@opentelemetry/core");
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { TracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace");

const EXPORTERS = {
  "http/protobuf": "@opentelemetry/exporter-trace-otlp-proto",
  "http/json": "@opentelemetry/exporter-trace-otlp-http",
  grpc: "@opentelemetry/exporter-trace-otlp-grpc",
};
const CHANNEL = "orders.created";
const SOURCE = `/node/orders/${crypto.randomBytes(2).toString("hex")}`;
const MESSAGES = 20;
const LOST = 7;
const DUPLICATE = 12;
const REDELIVERED = 4;
const FAILING = 15;
const propagator = new W3CTraceContextPropagator();

function provider(service, protocol) {
  const { OTLPTraceExporter } = require(EXPORTERS[protocol]);
  return new TracerProvider({
    resource: resourceFromAttributes({ "service.name": service }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
  });
}

function attributes(message, operation) {
  return {
    "messaging.system": "inproc",
    "messaging.destination.name": CHANNEL,
    "messaging.operation.type": operation,
    "messaging.message.id": message.id,
    "cloudevents.event_id": message.id,
    "cloudevents.event_source": SOURCE,
    "cloudevents.event_type": "shop.order.created",
    "eventscope.sequence": message.sequence,
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function publish(tracer, sequence) {
  const message = { id: `order-${sequence}-${crypto.randomUUID()}`, sequence, headers: {} };
  const span = tracer.startSpan(`send ${CHANNEL}`, {
    kind: api.SpanKind.PRODUCER,
    attributes: attributes(message, "send"),
  });
  propagator.inject(api.trace.setSpan(api.context.active(), span), message.headers, api.defaultTextMapSetter);
  span.end();
  return message;
}

async function deliver(tracer, message, fail) {
  const producer = api.trace.getSpanContext(
    propagator.extract(api.ROOT_CONTEXT, message.headers, api.defaultTextMapGetter),
  );
  const span = tracer.startSpan(
    `process ${CHANNEL}`,
    {
      kind: api.SpanKind.CONSUMER,
      links: [{ context: producer }],
      attributes: { ...attributes(message, "process"), "messaging.consumer.group.name": "billing" },
    },
    api.trace.setSpanContext(api.ROOT_CONTEXT, producer),
  );
  await sleep(2);
  if (fail) {
    span.recordException(new Error(`order ${message.sequence}: payment refused`));
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: "payment refused" });
  }
  span.end();
}

async function main() {
  const protocol = process.argv[2];
  if (!EXPORTERS[protocol]) throw new Error(`unknown protocol ${protocol}`);
  const orders = provider("node-orders", protocol);
  const billing = provider("node-billing", protocol);
  const producer = orders.getTracer("node-orders-app");
  const consumer = billing.getTracer("node-billing-app");
  const truth = { deliveries: 0, duplicates: {}, redeliveries: {}, failed: [], lost: [] };
  for (let sequence = 1; sequence <= MESSAGES; sequence++) {
    const message = publish(producer, sequence);
    await sleep(3);
    if (sequence === LOST) {
      truth.lost.push(message.id);
      truth.lost_sequences = [[LOST, LOST]];
      continue;
    }
    const handovers = sequence === DUPLICATE || sequence === REDELIVERED ? 2 : 1;
    for (let copy = 0; copy < handovers; copy++) {
      const fail = sequence === FAILING || (sequence === REDELIVERED && copy === 0);
      await deliver(consumer, message, fail);
      truth.deliveries += 1;
    }
    if (sequence === DUPLICATE) truth.duplicates[message.id] = 1;
    if (sequence === REDELIVERED) truth.redeliveries[message.id] = 1;
    if (sequence === FAILING) truth.failed.push(message.id);
  }
  // an exporter that is turned away still leaves the truth behind, with the reason
  const exportErrors = [];
  for (const tracerProvider of [orders, billing]) {
    await tracerProvider.shutdown().catch((error) => exportErrors.push(String(error.message || error)));
  }
  fs.writeFileSync(
    process.env.EVENTSCOPE_TRUTH,
    JSON.stringify(
      {
        ...truth,
        system: "inproc",
        protocol,
        channel: CHANNEL,
        source: SOURCE,
        numbered: true,
        producer_service: "node-orders",
        consumer_service: "node-billing",
        consumer_group: "billing",
        publishes: MESSAGES,
        failed_deliveries: 2, // sequence 4's first attempt and sequence 15
        messages: MESSAGES,
        spans: MESSAGES + truth.deliveries,
        dead_lettered: [],
        export_errors: exportErrors,
      },
      null,
      2,
    ),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
