// A Node service instrumented with @opentelemetry/sdk-node, exporting over OTLP/HTTP
// (protobuf) to the collector at OTEL_EXPORTER_OTLP_ENDPOINT, with the headers of
// OTEL_EXPORTER_OTLP_HEADERS: a request span, a child database span that fails, and a log
// record in it. Prints the trace id on stdout for the test to look up.
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { trace, SpanKind, SpanStatusCode, context } from '@opentelemetry/api';
import { logs, SeverityNumber } from '@opentelemetry/api-logs';

const sdk = new NodeSDK({
  resource: resourceFromAttributes({ 'service.name': 'node-shop' }),
  traceExporter: new OTLPTraceExporter(),
  logRecordProcessors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })],
  instrumentations: [],
});
sdk.start();

const tracer = trace.getTracer('node-shop');
const logger = logs.getLogger('node-shop');
let traceId;
tracer.startActiveSpan('GET /basket', { kind: SpanKind.SERVER, attributes: { 'http.route': '/basket' } }, (root) => {
  traceId = root.spanContext().traceId;
  tracer.startActiveSpan('SELECT basket', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }, (child) => {
    logger.emit({
      severityNumber: SeverityNumber.ERROR,
      severityText: 'ERROR',
      body: 'basket query failed',
      context: context.active(),
    });
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'relation "basket" does not exist' });
    child.end();
  });
  root.setStatus({ code: SpanStatusCode.ERROR });
  root.end();
});

await sdk.shutdown();
console.log(traceId);
