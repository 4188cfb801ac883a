// The contract between an idempotent producer and the broker, shared by both sides.
//
// The broker remembers the last RETAINED_PRODUCER_BATCHES batches of each producer per partition, so
// a retried batch among them is answered with its original offsets instead of being written twice.
// A producer therefore keeps at most that many batches in flight per partition: whichever of them is
// retried after a lost response is still remembered. (Kafka's rule: max.in.flight ≤ 5.)

export const RETAINED_PRODUCER_BATCHES = 5;
