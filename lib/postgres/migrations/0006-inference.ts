import type { Migration } from './index.js';

/**
 * Migration 6: ensemble inference. `inference_models` is the model registry (one row per
 * model endpoint); `inference_requests`, `inference_invocations` (one row per model called for
 * a request, with its outcome and latency) and `inference_results` (the aggregated answer)
 * are written by the ensemble's persist saga. Invocations and results go with their request
 * (`ON DELETE CASCADE`).
 * @internal
 */
export const inferenceMigration: Migration = {
  id: 6,
  name: 'inference',
  up: () => [
    `CREATE TABLE inference_models (
      name text PRIMARY KEY,
      endpoint text NOT NULL,
      kind text NOT NULL DEFAULT 'json',
      weight double precision NOT NULL DEFAULT 1,
      timeout_ms integer NOT NULL DEFAULT 5000,
      enabled boolean NOT NULL DEFAULT true,
      options jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT inference_models_weight_check CHECK (weight >= 0),
      CONSTRAINT inference_models_timeout_check CHECK (timeout_ms > 0)
    )`,
    `CREATE TABLE inference_requests (
      id text PRIMARY KEY,
      correlation_id text NOT NULL,
      input jsonb NOT NULL,
      strategy text NOT NULL,
      status text NOT NULL DEFAULT 'persisting',
      saga_id text,
      error jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT inference_requests_status_check
        CHECK (status IN ('persisting', 'answered', 'compensated'))
    )`,
    `CREATE TABLE inference_invocations (
      id bigserial PRIMARY KEY,
      request_id text NOT NULL REFERENCES inference_requests (id) ON DELETE CASCADE,
      model text NOT NULL,
      outcome text NOT NULL,
      answer jsonb,
      confidence double precision,
      error jsonb,
      latency_ms double precision NOT NULL,
      attempts integer NOT NULL,
      arrival integer,
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
    'CREATE INDEX inference_invocations_request_idx ON inference_invocations (request_id)',
    'CREATE INDEX inference_invocations_model_idx ON inference_invocations (model, created_at)',
    `CREATE TABLE inference_results (
      request_id text PRIMARY KEY REFERENCES inference_requests (id) ON DELETE CASCADE,
      answer jsonb NOT NULL,
      strategy text NOT NULL,
      support double precision NOT NULL,
      agreeing text[] NOT NULL,
      responded integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
  ],
};
