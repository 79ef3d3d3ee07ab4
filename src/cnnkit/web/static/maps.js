// u8 maps from the API ({shape, min, max, data: base64 of round(255*(A-min)/(max-min))}) and
// their drawing on canvases: grayscale for images, a diverging blue-white-red scale centred on 0
// for signed maps, a sequential dark-to-yellow scale for non-negative ones.

/** Decode a u8 map: {shape, min, max, bytes: Uint8Array, value(i)}. */
export function decodeMap(map) {
  const raw = atob(map.data);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  const expected = map.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) {
    throw new Error(`u8 map: ${bytes.length} bytes for shape [${map.shape}] (${expected} expected)`);
  }
  const lo = Number(map.min);
  const hi = Number(map.max);
  return {
    shape: map.shape,
    min: lo,
    max: hi,
    bytes,
    value: (i) => lo + (bytes[i] / 255) * (hi - lo),
  };
}

// Sequential scale (dark violet -> orange -> pale yellow), 5 stops, for values >= 0.
const SEQ = [
  [12, 7, 40],
  [88, 24, 110],
  [188, 55, 84],
  [246, 140, 38],
  [252, 244, 170],
];

function lerpStops(stops, u) {
  const x = Math.min(1, Math.max(0, u)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** An RGB triple for value v of a map with range [lo, hi]. */
export function colourFor(v, lo, hi) {
  if (lo < 0 && hi > 0) {
    const m = Math.max(-lo, hi);
    const u = v / m; // -1 .. 1
    const blue = [33, 102, 172];
    const red = [178, 24, 43];
    const end = u < 0 ? blue : red;
    const s = Math.min(1, Math.abs(u));
    return [255 + (end[0] - 255) * s, 255 + (end[1] - 255) * s, 255 + (end[2] - 255) * s];
  }
  const span = hi - lo;
  return lerpStops(SEQ, span > 0 ? (v - lo) / span : 0);
}

/** A 256-entry lookup table (byte -> RGB) for one map's range. */
export function lutFor(lo, hi, style) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let b = 0; b < 256; b += 1) {
    let rgb;
    if (style === "gray") {
      rgb = [b, b, b];
    } else {
      rgb = colourFor(lo + (b / 255) * (hi - lo), lo, hi);
    }
    lut[b * 3] = rgb[0];
    lut[b * 3 + 1] = rgb[1];
    lut[b * 3 + 2] = rgb[2];
  }
  return lut;
}

/** Draw h*w bytes starting at `offset` onto `canvas` (resized to w x h) with a lookup table. */
export function paintBytes(canvas, bytes, offset, h, w, lut) {
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i += 1) {
    const b = bytes[offset + i];
    img.data[i * 4] = lut[b * 3];
    img.data[i * 4 + 1] = lut[b * 3 + 1];
    img.data[i * 4 + 2] = lut[b * 3 + 2];
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** Draw a decoded (H, W) map (or the last two axes of (1, H, W)) as a grayscale image. */
export function paintGray(canvas, decoded) {
  const shape = decoded.shape;
  const h = shape[shape.length - 2];
  const w = shape[shape.length - 1];
  paintBytes(canvas, decoded.bytes, 0, h, w, lutFor(0, 1, "gray"));
}

/** Draw the model's input: (H, W) or (1, H, W) grayscale, (H, W, 3) colour (bytes as RGB). */
export function paintImage(canvas, decoded) {
  const shape = decoded.shape;
  if (shape.length === 3 && shape[2] === 3) {
    const [h, w] = shape;
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    const scale = (b) => decoded.min + (b / 255) * (decoded.max - decoded.min); // 0..255 values
    for (let i = 0; i < h * w; i += 1) {
      for (let c = 0; c < 3; c += 1) img.data[i * 4 + c] = scale(decoded.bytes[i * 3 + c]);
      img.data[i * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return;
  }
  paintGray(canvas, decoded);
}

/** Compact number for labels: integers as such, else 3 significant digits. */
export function fmt(v) {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000 || (a > 0 && a < 0.001)) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}
