/**
 * The built-in entities (`Atom`, `Outbox`, `AtomClaim`), re-exported where atom ingestion always
 * had them. They live in lib/postgres next to the migrations that create their tables, so
 * `openDatabase` registers them without importing atoms.
 *
 * @module
 */

export {
  Atom,
  AtomClaim,
  type AtomClaimEntity,
  type AtomEntity,
  atomEntities,
  Outbox,
  type OutboxEntity,
} from '../postgres/entities.js';
