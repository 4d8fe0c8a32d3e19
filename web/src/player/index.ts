// The player's browser entry: defines <cphone-player> (once, so a page may include the script twice).
import { CphonePlayer } from './element.js';

export type { PlayerState, Quality, StreamSession } from './element.js';
export { CphonePlayer };

if (!customElements.get('cphone-player')) customElements.define('cphone-player', CphonePlayer);
