/** Every hard limit of @cairn/tlog, with the reason beside it. */

/** Sizes and indexes are JavaScript numbers: exact integers only up to 2^53 - 1. A log of 9
 * quadrillion entries is far beyond any release log, and bigint would slow every proof step. */
export const MAX_TREE_SIZE = Number.MAX_SAFE_INTEGER;

/** An inclusion proof in a tree below 2^53 leaves has at most 53 hashes. */
export const MAX_INCLUSION_PROOF_HASHES = 53;

/** A consistency proof between trees below 2^53 leaves has at most 2 * 53 hashes (RFC 9162
 * §2.1.4: at most ceil(log2(second)) + 1 per side, and the shared part counts once). */
export const MAX_CONSISTENCY_PROOF_HASHES = 2 * 53;

/** C2SP tlog-tiles: tiles are 2^8 = 256 hashes wide. */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 2 ** TILE_HEIGHT;

/** SHA-256 output. */
export const HASH_SIZE = 32;

/** A checkpoint with a few dozen witness cosignatures is under 8 KiB; 64 KiB leaves room for
 * extension lines while bounding what a hostile mirror can make a client parse. */
export const MAX_NOTE_BYTES = 64 * 1024;

/** The Go reference (golang.org/x/mod/sumdb/note) refuses notes with more than 100
 * signatures; we do the same, so a note cannot make a verifier check signatures without end. */
export const MAX_NOTE_SIGNATURES = 100;

/** Ed25519 signature length (RFC 8032). */
export const ED25519_SIGNATURE_SIZE = 64;
