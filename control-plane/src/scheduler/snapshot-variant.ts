import { BLOCK_SIZE, columns, refreshBlock, type Snapshot } from './snapshot.js';
import { ARCHES, type HostState } from './types.js';

/**
 * The hosts of a base snapshot with those in one more state counted ready (the applier's fallback
 * onto hosts briefly without an agent stream). It shares every column with the base but state,
 * ready and the capacity index; the base's owner calls follow() after changing a host of the base
 * in place (O(1)), and the variant's capacity index catches up on the blocks that changed when it
 * is next read, so a variant that is seldom read costs its owner next to nothing.
 */
export class ReadyVariant {
  readonly #snapshot: Snapshot;
  readonly #state: HostState[];
  readonly #dirty = new Set<number>();

  constructor(
    private readonly base: Snapshot,
    private readonly alsoReady: HostState,
  ) {
    const blocks = Math.ceil(base.size / BLOCK_SIZE);
    this.#state = base.state.map((s) => (s === alsoReady ? 'ready' : s));
    this.#snapshot = {
      ...base,
      state: this.#state,
      ready: Uint8Array.from(this.#state, (s) => (s === 'ready' ? 1 : 0)),
      blockFree: columns(blocks * ARCHES.length),
      blockLabels: new Uint32Array(blocks * ARCHES.length),
    };
    for (let b = 0; b < blocks; b++) refreshBlock(this.#snapshot, b);
  }

  /** Host `index` of the base changed (its facts or its allocation). */
  follow(index: number): void {
    const state = this.base.state[index] ?? 'offline';
    const mine = state === this.alsoReady ? 'ready' : state;
    this.#state[index] = mine;
    (this.#snapshot.ready as Uint8Array)[index] = mine === 'ready' ? 1 : 0;
    this.#dirty.add(Math.floor(this.base.position[index]! / BLOCK_SIZE));
  }

  /** The variant, its capacity index up to date. */
  get snapshot(): Snapshot {
    for (const b of this.#dirty) refreshBlock(this.#snapshot, b);
    this.#dirty.clear();
    return this.#snapshot;
  }
}
