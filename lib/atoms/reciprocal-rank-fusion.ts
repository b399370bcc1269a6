/**
 * Options of {@link reciprocalRankFusion}.
 *
 * @example
 * ```ts
 * import type { ReciprocalRankFusionOptions } from '@hartonomous/pipelines/atoms';
 * const options: ReciprocalRankFusionOptions = { k: 60 };
 * ```
 */
export interface ReciprocalRankFusionOptions {
  /**
   * The damping constant: an item at rank `r` (1-based) of a list scores `1 / (k + r)`. Larger
   * values flatten the difference between top and lower ranks.
   * @default 60
   */
  k?: number;
}

/**
 * One id of a fused ranking.
 *
 * @example
 * ```ts
 * import type { FusedRank } from '@hartonomous/pipelines/atoms';
 * const show = (r: FusedRank) => `${r.id}: ${r.score.toFixed(4)}`;
 * ```
 */
export interface FusedRank {
  /** The id, as the lists gave it. */
  readonly id: string;
  /** Its fused score: the sum of `1 / (k + rank)` over the lists it appears in. */
  readonly score: number;
}

/**
 * Fuses ranked lists by reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009): each id
 * scores the sum over the lists it appears in of `1 / (k + rank)`, rank 1-based. Only ranks
 * count, never the lists' own scores, so lists on incomparable scales (cosine similarity and
 * full-text rank) fuse without calibration. An id appearing twice in a list counts at its first
 * rank only.
 *
 * @param lists - ranked lists of ids, best first
 * @param options - the damping constant
 * @returns every id once, best fused score first; ties by id (numerically for integer ids)
 *
 * @example
 * ```ts
 * import { reciprocalRankFusion } from '@hartonomous/pipelines/atoms';
 *
 * const fused = reciprocalRankFusion([['7', '3', '9'], ['3', '5']]);
 * fused[0]; // { id: '3', score: 1/62 + 1/61 }: second and first
 * ```
 */
export function reciprocalRankFusion(
  lists: readonly (readonly string[])[],
  options: ReciprocalRankFusionOptions = {},
): FusedRank[] {
  const k = options.k ?? 60;
  if (!(k >= 0) || !Number.isFinite(k)) {
    throw new TypeError(`reciprocalRankFusion: k must be a finite number >= 0, got ${k}`);
  }
  const scores = new Map<string, number>();
  for (const list of lists) {
    const seen = new Set<string>();
    list.forEach((id, i) => {
      if (seen.has(id)) return;
      seen.add(id);
      scores.set(id, (scores.get(id) ?? 0) + 1 / (k + i + 1));
    });
  }
  return [...scores]
    .map(([id, score]) => ({ id, score }))
    .sort((a, b) => b.score - a.score || compareIds(a.id, b.id));
}

const INTEGER = /^\d+$/;

/** Integer ids numerically (`'9' < '10'`), others as strings. @internal */
export function compareIds(a: string, b: string): number {
  if (INTEGER.test(a) && INTEGER.test(b)) {
    return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  }
  return a < b ? -1 : a > b ? 1 : 0;
}
