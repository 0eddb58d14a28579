// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) by a 256-entry table, and the "masked" form
// TFRecord files store: ((crc >>> 15) | (crc << 17)) + 0xa282ead8, mod 2^32. Used by the TensorBoard
// event writer. Follows tensorflow `core/lib/hash/crc32c.h` (Mask) and RFC 3720 §B.4 (the polynomial).
// Not here: hardware (SSE4.2) acceleration; event files are small.

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `data` (unsigned 32-bit). `crc32c(utf8('123456789')) === 0xe3069283`. */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const MASK_DELTA = 0xa282ead8;

/** TFRecord's masked CRC: a CRC of data that itself contains CRCs would otherwise be weak. */
export function maskCrc32c(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0;
}

export function unmaskCrc32c(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}
