// Reports one error with the real @sentry/node through SENTRY_DSN (a DSN from
// `pg-monitoring projects add`) and prints its event id once it is sent.
import * as Sentry from "@sentry/node";

Sentry.init({ dsn: process.env.SENTRY_DSN, environment: "node-test", tracesSampleRate: 0 });

function loadBasket(id) {
  throw new TypeError(`basket ${id} has no owner`);
}

let eventId;
try {
  loadBasket(42);
} catch (error) {
  eventId = Sentry.captureException(error);
}
const sent = await Sentry.flush(10000);
if (!sent) {
  console.error("flush timed out");
  process.exit(1);
}
console.log(eventId);
