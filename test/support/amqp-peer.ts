/**
 * A small in-memory AMQP 1.0 peer that the real `@azure/service-bus` 7.x client can talk to,
 * built on `rhea`. Tests start one per test (port 0) and point the SDK at `peer.connectionString`.
 *
 * What it mirrors of Service Bus: SASL ANONYMOUS, `$cbs` put-token, `max_message_size` on attach,
 * batched sends (format 0x80013700), queues with peekLock (16-byte delivery tags as lock tokens,
 * complete / abandon / dead-letter / lock expiry, `maxDeliveryCount`), the `<queue>/$DeadLetterQueue`
 * sub-queue, `$management` (renew-lock, peek, update-disposition), link credit and drain, and
 * optional duplicate detection by `message_id`. It is a test double: no topics, sessions,
 * scheduling, deferral or transactions.
 *
 * @internal
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Server, Socket } from 'node:net';
import type { Connection, Container, Delivery, EventContext, Message, Sender } from 'rhea';
import rhea from 'rhea';

/** Options of {@link startAmqpPeer}. */
export interface AmqpPeerOptions {
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** How long a peekLock lock lasts before the message returns to the queue. @default 30_000 */
  lockDurationMs?: number;
  /** `max_message_size` announced on every attach (caps `createMessageBatch`). @default 262_144 */
  maxMessageSize?: number;
  /** Deliveries after which a message is dead-lettered (`MaxDeliveryCountExceeded`). @default 10 */
  maxDeliveryCount?: number;
  /** Drop a message whose `message_id` was accepted within this many ms; 0 turns it off. @default 0 */
  duplicateDetectionWindowMs?: number;
  /** Answer each drain request this much later (a slow broker or a stalled client). @default 0 */
  drainDelayMs?: number;
}

/** A message as the peer holds it, for assertions. */
export interface PeerMessage {
  readonly messageId: string;
  readonly correlationId?: string;
  readonly contentType?: string;
  readonly subject?: string;
  readonly sessionId?: string;
  readonly partitionKey?: string;
  /** The body decoded as the SDK would: JSON data sections parsed, other values as sent. */
  readonly body: unknown;
  readonly applicationProperties: Record<string, unknown>;
  readonly sequenceNumber: number;
  /** Deliveries that ended without completion (the AMQP header `delivery-count`). */
  readonly deliveryCount: number;
  readonly enqueuedAt: Date;
  readonly state: 'available' | 'locked';
  readonly lockedUntil?: Date;
  readonly deadLetterReason?: string;
  readonly deadLetterDescription?: string;
}

/** A message the peer accepted from a sender (duplicates included, flagged). */
export interface SentMessage {
  readonly messageId: string;
  readonly correlationId?: string;
  readonly contentType?: string;
  readonly subject?: string;
  readonly body: unknown;
  readonly applicationProperties: Record<string, unknown>;
  /** True when duplicate detection dropped it. */
  readonly duplicate: boolean;
  /** True when it arrived inside a batched transfer (format 0x80013700). */
  readonly batched: boolean;
}

/** A running peer. */
export interface AmqpPeer {
  /** The port the peer listens on (kept across stop/start). */
  readonly port: number;
  /** `Endpoint=sb://localhost:PORT;...;UseDevelopmentEmulator=true`. */
  readonly connectionString: string;
  /** Messages in the queue now (available and locked), by sequence number. */
  messages(queue: string): PeerMessage[];
  /** Messages in `<queue>/$DeadLetterQueue`. */
  deadLetters(queue: string): PeerMessage[];
  /** Every message ever accepted for `queue`, in arrival order. */
  sent(queue: string): SentMessage[];
  /** Puts a message straight into a queue (as if sent). */
  enqueue(queue: string, message: Message): void;
  /** Open AMQP connections. */
  connectionCount(): number;
  /** Completed, abandoned, dead-lettered and expired lock counts, for assertions. */
  stats(queue: string): QueueStats;
  /** Simulates an outage: drops every connection and refuses new ones. Queues are kept. */
  stop(): Promise<void>;
  /** Accepts connections again on the same port. */
  start(): Promise<void>;
  /** Stops for good and clears timers. */
  close(): Promise<void>;
}

/** Counters per queue. */
export interface QueueStats {
  completed: number;
  abandoned: number;
  deadLettered: number;
  lockExpired: number;
  renewed: number;
  /** Locked messages returned because their link or connection closed. */
  returnedOnClose: number;
  /** Receiving links (SDK receivers) attached to the queue so far. */
  consumerLinks: number;
  /** Drain requests (a receive call's end) the peer answered. */
  drainsAnswered: number;
}

interface Lock {
  readonly key: string;
  until: number;
  timer: NodeJS.Timeout;
  readonly delivery: Delivery;
}

interface Entry {
  readonly seq: number;
  msg: Message;
  readonly enqueuedAt: number;
  deliveryCount: number;
  lock?: Lock;
  deadLetter?: { reason?: string; description?: string; source: string };
}

interface Entity {
  readonly key: string;
  readonly name: string;
  available: Entry[];
  readonly locked: Map<string, Entry>;
  readonly consumers: Sender[];
  rr: number;
  readonly sent: SentMessage[];
  readonly seen: Map<string, number>;
  readonly stats: QueueStats;
}

interface ConnState {
  readonly senders: Map<string, Sender>;
  readonly pendingReplies: Map<string, Message[]>;
  readonly consumers: Set<Sender>;
}

/** rhea internals the peer needs that its typings do not declare. */
interface SenderInternals {
  credit: number;
  delivery_count: number;
  _draining: boolean;
  _drained: boolean;
  issue_flow: boolean;
  _get_drain: () => boolean;
  local: { attach: Record<string, unknown> };
  session: { outgoing: { next_pending_delivery: number; available(): number } };
  connection: { _register?: () => void };
}

type Outcome =
  | { kind: 'complete' }
  | { kind: 'abandon'; properties?: Record<string, unknown> }
  | {
      kind: 'deadLetter';
      reason?: string;
      description?: string;
      properties?: Record<string, unknown>;
    };

/** The outcome constructors rhea has at run time but does not declare. */
const outcomes = rhea.message as unknown as {
  accepted(): { described(): unknown };
  released(): { described(): unknown };
  rejected(fields: { error?: { condition: string; description: string } }): {
    described(): unknown;
  };
};

const BATCH_FORMAT = 0x80013700;
const DLQ = '/$deadletterqueue';
const LOCK_LOST = 'com.microsoft:message-lock-lost';

/**
 * Starts a peer on 127.0.0.1.
 * @param options - see {@link AmqpPeerOptions}
 * @returns the running peer (already listening)
 */
export async function startAmqpPeer(options: AmqpPeerOptions = {}): Promise<AmqpPeer> {
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  const maxMessageSize = options.maxMessageSize ?? 262_144;
  const maxDeliveryCount = options.maxDeliveryCount ?? 10;
  const drainDelayMs = options.drainDelayMs ?? 0;
  const dedupeWindowMs = options.duplicateDetectionWindowMs ?? 0;

  const container: Container = rhea.create_container({
    id: `amqp-peer-${randomUUID()}`,
    autoaccept: false,
    treat_modified_as_released: false,
  });
  container.sasl_server_mechanisms.enable_anonymous();

  const entities = new Map<string, Entity>();
  const deliveries = new WeakMap<Delivery, { entity: Entity; entry: Entry }>();
  const outstanding = new Map<Sender, Set<Delivery>>();
  const conns = new Map<Connection, ConnState>();
  const sockets = new Set<Socket>();
  let seq = 0;
  let server: Server | undefined;
  let port = options.port ?? 0;
  let closed = false;

  function entity(address: string): Entity {
    const key = normalize(address);
    let found = entities.get(key);
    if (!found) {
      found = {
        key,
        name: address.replace(/^\//, ''),
        available: [],
        locked: new Map(),
        consumers: [],
        rr: 0,
        sent: [],
        seen: new Map(),
        stats: {
          completed: 0,
          abandoned: 0,
          deadLettered: 0,
          lockExpired: 0,
          renewed: 0,
          returnedOnClose: 0,
          consumerLinks: 0,
          drainsAnswered: 0,
        },
      };
      entities.set(key, found);
    }
    return found;
  }

  function connState(connection: Connection): ConnState {
    let state = conns.get(connection);
    if (!state) {
      state = { senders: new Map(), pendingReplies: new Map(), consumers: new Set() };
      conns.set(connection, state);
    }
    return state;
  }

  // ---- queue operations ------------------------------------------------------------------

  function accept(target: Entity, msg: Message, batched: boolean): void {
    if (msg.message_id === undefined || msg.message_id === null) msg.message_id = randomUUID();
    const id = String(msg.message_id);
    const now = Date.now();
    let duplicate = false;
    if (dedupeWindowMs > 0) {
      for (const [k, at] of target.seen) if (now - at > dedupeWindowMs) target.seen.delete(k);
      duplicate = target.seen.has(id);
      if (!duplicate) target.seen.set(id, now);
    }
    target.sent.push({ ...describe(msg), duplicate, batched });
    if (duplicate) return;
    insert(target, { seq: ++seq, msg, enqueuedAt: now, deliveryCount: 0 });
    pump(target);
  }

  function insert(target: Entity, entry: Entry): void {
    const list = target.available;
    let i = list.length;
    while (i > 0 && (list[i - 1] as Entry).seq > entry.seq) i--;
    list.splice(i, 0, entry);
  }

  function unsent(sender: Sender): number {
    const set = outstanding.get(sender);
    if (!set || set.size === 0) return 0;
    const next = (sender as unknown as SenderInternals).session.outgoing.next_pending_delivery;
    let n = 0;
    for (const d of set) if (d.id >= next) n++;
    return n;
  }

  function capacity(sender: Sender): number {
    if (!sender.is_open()) return 0;
    const internals = sender as unknown as SenderInternals;
    // rhea keeps every delivery of a session in a fixed ring (2048) until it and all before it
    // are settled: a message held long at the head while others flow past fills it, and one
    // more send would overflow it and wedge the session. Wait for room instead.
    return Math.min(internals.credit - unsent(sender), internals.session.outgoing.available());
  }

  const pumpSoon = new Set<Entity>();
  /** Pumps after rhea has processed pending settlements (which frees ring slots). */
  function schedulePump(target: Entity): void {
    if (pumpSoon.has(target)) return;
    pumpSoon.add(target);
    setImmediate(() => {
      pumpSoon.delete(target);
      pump(target);
    });
  }

  function pump(target: Entity): void {
    while (target.available.length > 0 && target.consumers.length > 0) {
      let chosen: Sender | undefined;
      for (let i = 0; i < target.consumers.length; i++) {
        const idx = (target.rr + i) % target.consumers.length;
        const c = target.consumers[idx] as Sender;
        if (capacity(c) > 0) {
          chosen = c;
          target.rr = idx + 1;
          break;
        }
      }
      if (!chosen) return;
      deliver(target, chosen, target.available.shift() as Entry);
    }
  }

  function deliver(target: Entity, sender: Sender, entry: Entry): void {
    const tag = randomBytes(16);
    const key = reorder(tag).toString('hex');
    const until = Date.now() + lockDurationMs;
    const out: Message = {
      ...entry.msg,
      delivery_count: entry.deliveryCount,
      message_annotations: {
        ...(entry.msg.message_annotations ?? {}),
        'x-opt-sequence-number': rhea.types.wrap_long(entry.seq),
        'x-opt-enqueued-time': new Date(entry.enqueuedAt),
        'x-opt-locked-until': new Date(until),
      },
    };
    const delivery = sender.send(out, tag);
    const timer = setTimeout(() => expire(target, entry, key), lockDurationMs);
    timer.unref();
    entry.lock = { key, until, timer, delivery };
    target.locked.set(key, entry);
    deliveries.set(delivery, { entity: target, entry });
    let set = outstanding.get(sender);
    if (!set) {
      set = new Set();
      outstanding.set(sender, set);
    }
    set.add(delivery);
  }

  function unlock(target: Entity, entry: Entry): void {
    if (!entry.lock) return;
    clearTimeout(entry.lock.timer);
    target.locked.delete(entry.lock.key);
    entry.lock = undefined;
  }

  function expire(target: Entity, entry: Entry, key: string): void {
    if (entry.lock?.key !== key) return;
    target.stats.lockExpired++;
    unlock(target, entry);
    redeliverLater(target, entry);
  }

  /** A delivery attempt ended without completion: count it, then requeue or dead-letter. */
  function redeliverLater(target: Entity, entry: Entry): void {
    entry.deliveryCount++;
    if (entry.deliveryCount >= maxDeliveryCount) {
      moveToDeadLetter(
        target,
        entry,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${maxDeliveryCount} delivery attempts.`,
      );
      return;
    }
    insert(target, entry);
    pump(target);
  }

  function moveToDeadLetter(
    target: Entity,
    entry: Entry,
    reason: string | undefined,
    description: string | undefined,
    properties?: Record<string, unknown>,
  ): void {
    target.stats.deadLettered++;
    const dlq = entity(`${target.name}/$DeadLetterQueue`);
    const app: Record<string, unknown> = { ...(entry.msg.application_properties ?? {}) };
    Object.assign(app, properties ?? {});
    if (reason !== undefined) app.DeadLetterReason = reason;
    if (description !== undefined) app.DeadLetterErrorDescription = description;
    entry.msg = {
      ...entry.msg,
      application_properties: app,
      message_annotations: {
        ...(entry.msg.message_annotations ?? {}),
        'x-opt-deadletter-source': target.name,
      },
    };
    entry.deadLetter = { reason, description, source: target.name };
    insert(dlq, entry);
    pump(dlq);
  }

  function apply(target: Entity, entry: Entry, outcome: Outcome): void {
    unlock(target, entry);
    switch (outcome.kind) {
      case 'complete':
        target.stats.completed++;
        return;
      case 'abandon':
        target.stats.abandoned++;
        if (outcome.properties) {
          entry.msg = {
            ...entry.msg,
            application_properties: {
              ...(entry.msg.application_properties ?? {}),
              ...outcome.properties,
            },
          };
        }
        redeliverLater(target, entry);
        return;
      case 'deadLetter':
        moveToDeadLetter(target, entry, outcome.reason, outcome.description, outcome.properties);
        return;
    }
  }

  /** Returns every message locked by `sender` to its queue (link or connection closed). */
  function releaseLink(sender: Sender): void {
    const set = outstanding.get(sender);
    outstanding.delete(sender);
    for (const e of entities.values()) {
      const i = e.consumers.indexOf(sender);
      if (i >= 0) e.consumers.splice(i, 1);
    }
    if (!set) return;
    const touched = new Set<Entity>();
    const next = (sender as unknown as SenderInternals).session.outgoing.next_pending_delivery;
    for (const d of set) {
      const found = deliveries.get(d);
      if (!found || found.entry.lock?.delivery !== d) continue;
      const { entity: target, entry } = found;
      unlock(target, entry);
      target.stats.returnedOnClose++;
      if (d.id < next) {
        redeliverLater(target, entry);
      } else {
        insert(target, entry); // never transmitted: not a delivery attempt
      }
      touched.add(target);
    }
    for (const t of touched) pump(t);
  }

  function releaseConnection(connection: Connection): void {
    const state = conns.get(connection);
    conns.delete(connection);
    if (!state) return;
    for (const s of state.consumers) releaseLink(s);
  }

  // ---- settlement from consumers ---------------------------------------------------------

  function settle(delivery: Delivery, outcome: Outcome, state: unknown): void {
    const set = outstanding.get(delivery.link as Sender);
    set?.delete(delivery);
    const found = deliveries.get(delivery);
    if (!found || found.entry.lock?.delivery !== delivery) {
      delivery.update(
        true,
        outcomes
          .rejected({
            error: {
              condition: LOCK_LOST,
              description:
                'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.',
            },
          })
          .described(),
      );
      return;
    }
    apply(found.entity, found.entry, outcome);
    delivery.update(true, state);
    // The SDK receives in rcv-settle-mode "second": it never sends a settled disposition after
    // ours, so rhea would keep the delivery in the session ring for ever (the session wedges
    // after 2048 messages). Our settlement ends it.
    (delivery as unknown as { remote_settled: boolean }).remote_settled = true;
    schedulePump(found.entity);
  }

  container.on('accepted', (ctx: EventContext) => {
    const d = ctx.delivery as Delivery;
    if (!deliveries.has(d)) return void (d.remote_settled || d.update(true));
    settle(d, { kind: 'complete' }, outcomes.accepted().described());
  });
  container.on('released', (ctx: EventContext) => {
    const d = ctx.delivery as Delivery;
    if (!deliveries.has(d)) return void (d.remote_settled || d.update(true));
    settle(d, { kind: 'abandon' }, outcomes.released().described());
  });
  container.on('modified', (ctx: EventContext) => {
    const d = ctx.delivery as Delivery;
    if (!deliveries.has(d)) return void (d.remote_settled || d.update(true));
    const state = d.remote_state as { message_annotations?: Record<string, unknown> } | undefined;
    // Deferral (undeliverable_here) is not modelled: it is treated as an abandon.
    settle(
      d,
      { kind: 'abandon', properties: state?.message_annotations },
      outcomes.released().described(),
    );
  });
  container.on('rejected', (ctx: EventContext) => {
    const d = ctx.delivery as Delivery;
    if (!deliveries.has(d)) return void (d.remote_settled || d.update(true));
    const error = (d.remote_state as { error?: { info?: Record<string, unknown> } } | undefined)
      ?.error;
    const info = { ...(error?.info ?? {}) };
    const reason = stringOrUndefined(info.DeadLetterReason);
    const description = stringOrUndefined(info.DeadLetterErrorDescription);
    delete info.DeadLetterReason;
    delete info.DeadLetterErrorDescription;
    settle(
      d,
      { kind: 'deadLetter', reason, description, properties: info },
      outcomes.rejected({}).described(),
    );
  });

  // ---- links -------------------------------------------------------------------------------

  container.on('receiver_open', (ctx: EventContext) => {
    const receiver = ctx.receiver as NonNullable<EventContext['receiver']>;
    const local = (receiver as unknown as SenderInternals).local.attach;
    local.max_message_size = maxMessageSize;
    const remoteTarget = receiver.target as { address?: string } | undefined;
    receiver.set_target({ address: remoteTarget?.address ?? '' });
  });

  container.on('sender_open', (ctx: EventContext) => {
    const sender = ctx.sender as Sender;
    const internals = sender as unknown as SenderInternals;
    internals.local.attach.max_message_size = maxMessageSize;
    internals.local.attach.rcv_settle_mode = (
      sender as unknown as { rcv_settle_mode?: number }
    ).rcv_settle_mode;
    const address = (sender.source as { address?: string } | undefined)?.address ?? '';
    sender.set_source({ address });
    // Answer a drain even when no credit is left, so the client's drain always completes.
    internals._get_drain = function (this: SenderInternals): boolean {
      if (this._draining && this._drained) {
        this.delivery_count += Math.max(this.credit, 0);
        this.credit = 0;
        this._draining = false;
        return true;
      }
      return false;
    };
    const state = connState(ctx.connection);
    state.senders.set(sender.name, sender);
    const pending = state.pendingReplies.get(sender.name);
    if (pending) {
      state.pendingReplies.delete(sender.name);
      for (const m of pending) sender.send(m);
    }
    if (isQueueAddress(address)) {
      const target = entity(address);
      target.consumers.push(sender);
      target.stats.consumerLinks++;
      state.consumers.add(sender);
    }
  });

  const onSenderGone = (ctx: EventContext): void => {
    const sender = ctx.sender as Sender;
    const state = conns.get(ctx.connection);
    if (state?.senders.get(sender.name) === sender) state.senders.delete(sender.name);
    state?.consumers.delete(sender);
    releaseLink(sender);
  };
  container.on('sender_close', onSenderGone);
  container.on('sender_error', () => {});

  const pumpFor = (ctx: EventContext): void => {
    const sender = ctx.sender as Sender;
    const address = (sender.source as { address?: string } | undefined)?.address ?? '';
    if (isQueueAddress(address)) pump(entity(address));
  };
  container.on('sendable', pumpFor);
  container.on('sender_flow', pumpFor);
  container.on('sender_draining', (ctx: EventContext) => {
    pumpFor(ctx);
    const sender = ctx.sender as Sender;
    const address = (sender.source as { address?: string } | undefined)?.address ?? '';
    const answer = (): void => {
      if (isQueueAddress(address)) entity(address).stats.drainsAnswered++;
      sender.set_drained(true);
      (sender as unknown as SenderInternals).connection._register?.();
    };
    if (drainDelayMs > 0) setTimeout(() => sender.is_open() && answer(), drainDelayMs).unref();
    else answer();
  });

  container.on('receiver_close', () => {});
  container.on('receiver_error', () => {});
  container.on('session_error', () => {});
  container.on('connection_error', () => {});
  container.on('error', () => {});
  container.on('connection_open', (ctx: EventContext) => {
    connState(ctx.connection);
  });
  container.on('connection_close', (ctx: EventContext) => releaseConnection(ctx.connection));
  container.on('disconnected', (ctx: EventContext) => releaseConnection(ctx.connection));

  // ---- incoming messages: sends, $cbs and $management --------------------------------------

  container.on('message', (ctx: EventContext) => {
    const receiver = ctx.receiver as NonNullable<EventContext['receiver']>;
    const delivery = ctx.delivery as Delivery;
    const address = (receiver.target as { address?: string } | undefined)?.address ?? '';
    const raw = ctx.message as unknown;
    if (address === '$cbs') {
      delivery.accept();
      const req = raw as Message;
      reply(ctx.connection, req, { 'status-code': 202, 'status-description': 'Accepted' });
      return;
    }
    if (/\/\$management$/i.test(address)) {
      delivery.accept();
      manage(ctx.connection, address.replace(/\/\$management$/i, ''), raw as Message);
      return;
    }
    const target = entity(address);
    const format = (ctx as { format?: number }).format ?? 0;
    if (format === BATCH_FORMAT && Buffer.isBuffer(raw)) {
      const outer = rhea.message.decode(raw);
      const body = outer.body as { content?: unknown; multiple?: boolean } | undefined;
      const parts = body?.multiple ? (body.content as Buffer[]) : [body?.content as Buffer];
      for (const part of parts)
        accept(target, rhea.message.decode(part) as unknown as Message, true);
    } else {
      accept(target, raw as Message, false);
    }
    delivery.accept();
  });

  function reply(
    connection: Connection,
    request: Message,
    status: Record<string, unknown>,
    body?: unknown,
  ): void {
    const response: Message = {
      correlation_id: request.message_id,
      application_properties: status,
      body,
    };
    const to = String(request.reply_to ?? '');
    const state = connState(connection);
    const sender = state.senders.get(to);
    if (sender) {
      sender.send(response);
    } else {
      const list = state.pendingReplies.get(to) ?? [];
      list.push(response);
      state.pendingReplies.set(to, list);
    }
  }

  /** Answers one `$management` request; returns the status code sent. */
  function manage(connection: Connection, entityAddress: string, req: Message): number {
    const op = String(req.application_properties?.operation ?? '');
    const body = (req.body ?? {}) as Record<string, unknown>;
    const target = entity(entityAddress);
    const ok = (code: number, payload?: unknown): number => {
      reply(connection, req, { statusCode: code }, payload);
      return code;
    };
    const fail = (code: number, condition: string, description: string): number => {
      reply(connection, req, {
        statusCode: code,
        errorCondition: condition,
        statusDescription: description,
      });
      return code;
    };
    const tokens = (): Entry[] | undefined => {
      const list = (body['lock-tokens'] as unknown[] | undefined) ?? [];
      const out: Entry[] = [];
      for (const t of list) {
        const entry = target.locked.get(tokenKey(t));
        if (!entry) return undefined;
        out.push(entry);
      }
      return out;
    };
    switch (op) {
      case 'com.microsoft:renew-lock': {
        const entries = tokens();
        if (!entries) return fail(410, LOCK_LOST, 'The lock supplied is invalid.');
        const expirations = entries.map((entry) => {
          const lock = entry.lock as Lock;
          clearTimeout(lock.timer);
          lock.until = Date.now() + lockDurationMs;
          lock.timer = setTimeout(() => expire(target, entry, lock.key), lockDurationMs);
          lock.timer.unref();
          target.stats.renewed++;
          return new Date(lock.until);
        });
        return ok(200, { expirations });
      }
      case 'com.microsoft:peek-message': {
        const from = Number(body['from-sequence-number'] ?? 1);
        const count = Number(body['message-count'] ?? 1);
        const all = [...target.available, ...target.locked.values()]
          .filter((e) => e.seq >= from)
          .sort((a, b) => a.seq - b.seq)
          .slice(0, count);
        if (all.length === 0) return ok(204);
        const messages = all.map((e) => ({
          message: rhea.message.encode({
            ...e.msg,
            delivery_count: e.deliveryCount,
            message_annotations: {
              ...(e.msg.message_annotations ?? {}),
              'x-opt-sequence-number': rhea.types.wrap_long(e.seq),
              'x-opt-enqueued-time': new Date(e.enqueuedAt),
            },
          }),
        }));
        return ok(200, { messages });
      }
      case 'com.microsoft:update-disposition': {
        const entries = tokens();
        if (!entries) return fail(410, LOCK_LOST, 'The lock supplied is invalid.');
        const status = String(body['disposition-status'] ?? '');
        const properties = body['properties-to-modify'] as Record<string, unknown> | undefined;
        for (const entry of entries) {
          if (status === 'completed') apply(target, entry, { kind: 'complete' });
          else if (status === 'suspended')
            apply(target, entry, {
              kind: 'deadLetter',
              reason: stringOrUndefined(body['deadletter-reason']),
              description: stringOrUndefined(body['deadletter-description']),
              properties,
            });
          else apply(target, entry, { kind: 'abandon', properties });
        }
        return ok(200);
      }
      default:
        return fail(501, 'amqp:not-implemented', `operation '${op}' is not implemented`);
    }
  }

  // ---- server lifecycle --------------------------------------------------------------------

  async function listen(): Promise<void> {
    const s = container.listen({ port, host: '127.0.0.1' }) as Server;
    s.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await once(s, 'listening');
    const address = s.address();
    if (address && typeof address === 'object') port = address.port;
    server = s;
  }

  async function stop(): Promise<void> {
    const s = server;
    server = undefined;
    for (const c of [...conns.keys()]) {
      // Drop the socket like a network failure, and tell rhea (a locally destroyed socket
      // emits no 'end'), which clears the connection's heartbeat timers.
      const internals = c as unknown as { socket?: Socket; eof?: () => void };
      internals.socket?.destroy();
      internals.eof?.();
      releaseConnection(c);
    }
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  await listen();

  const view = (e: Entry): PeerMessage => ({
    ...describe(e.msg),
    sequenceNumber: e.seq,
    deliveryCount: e.deliveryCount,
    enqueuedAt: new Date(e.enqueuedAt),
    state: e.lock ? 'locked' : 'available',
    ...(e.lock ? { lockedUntil: new Date(e.lock.until) } : {}),
    ...(e.deadLetter?.reason !== undefined ? { deadLetterReason: e.deadLetter.reason } : {}),
    ...(e.deadLetter?.description !== undefined
      ? { deadLetterDescription: e.deadLetter.description }
      : {}),
  });
  const contents = (t: Entity): PeerMessage[] =>
    [...t.available, ...t.locked.values()].sort((a, b) => a.seq - b.seq).map(view);

  return {
    get port() {
      return port;
    },
    get connectionString() {
      return `Endpoint=sb://localhost:${port};SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true`;
    },
    messages: (queue) => contents(entity(queue)),
    deadLetters: (queue) => contents(entity(`${queue}/$DeadLetterQueue`)),
    sent: (queue) => [...entity(queue).sent],
    enqueue: (queue, message) => accept(entity(queue), { ...message }, false),
    connectionCount: () => conns.size,
    stats: (queue) => ({ ...entity(queue).stats }),
    stop,
    async start() {
      if (closed) throw new Error('peer is closed');
      if (!server) await listen();
    },
    async close() {
      closed = true;
      await stop();
      for (const e of entities.values()) for (const entry of e.locked.values()) unlock(e, entry);
    },
  };
}

function normalize(address: string): string {
  let key = address.replace(/^\//, '').toLowerCase();
  if (key.endsWith(DLQ)) key = key.slice(0, -DLQ.length) + DLQ;
  return key;
}

function isQueueAddress(address: string): boolean {
  return address !== '' && address !== '$cbs' && !/\$management$/i.test(address);
}

/** The SDK shows lock tokens as .NET GUIDs: the first three groups of the tag byte-swapped. */
function reorder(tag: Buffer): Buffer {
  const b = Buffer.from(tag);
  return Buffer.from([
    b[3] ?? 0,
    b[2] ?? 0,
    b[1] ?? 0,
    b[0] ?? 0,
    b[5] ?? 0,
    b[4] ?? 0,
    b[7] ?? 0,
    b[6] ?? 0,
    ...b.subarray(8),
  ]);
}

function tokenKey(token: unknown): string {
  if (Buffer.isBuffer(token)) return token.toString('hex');
  if (typeof token === 'string') return token.replace(/-/g, '').toLowerCase();
  return String(token);
}

function stringOrUndefined(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : String(v);
}

function decodeBody(body: unknown): unknown {
  const section = body as { typecode?: number; content?: unknown; multiple?: boolean } | undefined;
  if (
    section &&
    section.typecode === 0x75 &&
    !section.multiple &&
    Buffer.isBuffer(section.content)
  ) {
    const text = section.content.toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      return section.content;
    }
  }
  if (section && section.typecode !== undefined && 'content' in section) return section.content;
  return body;
}

function describe(msg: Message): Omit<SentMessage, 'duplicate' | 'batched'> & {
  sessionId?: string;
  partitionKey?: string;
} {
  const out: Record<string, unknown> = {
    messageId: String(msg.message_id),
    body: decodeBody(msg.body),
    applicationProperties: { ...(msg.application_properties ?? {}) },
  };
  if (msg.correlation_id !== undefined) out.correlationId = String(msg.correlation_id);
  if (msg.content_type !== undefined) out.contentType = String(msg.content_type);
  if (msg.subject !== undefined) out.subject = msg.subject;
  if (msg.group_id !== undefined) out.sessionId = msg.group_id;
  const pk = msg.message_annotations?.['x-opt-partition-key'];
  if (pk !== undefined) out.partitionKey = String(pk);
  return out as Omit<SentMessage, 'duplicate' | 'batched'>;
}
