export { isTransient, sleep, withRetry, withTimeout, type RetryPolicy } from "../resilience";
