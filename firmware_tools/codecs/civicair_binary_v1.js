// civicair compact binary v1: payload codec for ChirpStack v4 and The Things Stack v3.
// Paste into the device profile (ChirpStack: "Codec" tab, JavaScript functions) or the TTS
// application / end-device "Payload formatters" (Uplink, Custom Javascript formatter).
// Layout: see gateway/codecs/civicair_binary.py (big-endian, 14-28 bytes, fPort 1).
// It decodes exactly what civicair's Python decoder decodes (tested with node).

function decodeUplink(input) {
  var b = input.bytes;
  var n = b.length;
  function u8(o) { return b[o] & 0xff; }
  function u16(o) { return ((b[o] & 0xff) << 8) | (b[o + 1] & 0xff); }
  function i16(o) { var v = u16(o); return v >= 0x8000 ? v - 0x10000 : v; }
  function i32(o) { return ((b[o] & 0xff) << 24) | ((b[o + 1] & 0xff) << 16) | ((b[o + 2] & 0xff) << 8) | (b[o + 3] & 0xff); }
  function scaled(v, na, scale) { return v === na ? null : parseFloat((v / scale).toFixed(6)); }

  if (n < 14) { return { errors: ["binary v1: " + n + " bytes, need at least 14"] }; }
  if (u8(0) !== 1) { return { errors: ["binary v1: unknown version " + u8(0)] }; }
  var flags = u8(1);
  if (flags & ~0x07) { return { errors: ["binary v1: reserved flag bits set"] }; }
  var expected = 14 + (flags & 1 ? 2 : 0) + (flags & 2 ? 10 : 0) + (flags & 4 ? 2 : 0);
  if (n !== expected) { return { errors: ["binary v1: " + n + " bytes, flags need " + expected] }; }

  var data = {
    pm1: scaled(u16(2), 0xffff, 10),
    pm25: scaled(u16(4), 0xffff, 10),
    pm10: scaled(u16(6), 0xffff, 10),
    temperature: scaled(i16(8), 0x7fff, 100),
    humidity: scaled(u8(10), 0xff, 2),
    pressure: scaled(u16(11), 0xffff, 10),
    no2: null,
    battery_v: u8(13) === 0xff ? null : parseFloat((2 + u8(13) / 100).toFixed(2)),
    position: null,
    sensor_error: null
  };
  var off = 14;
  if (flags & 1) { data.no2 = scaled(u16(off), 0xffff, 10); off += 2; }
  if (flags & 2) {
    var lat = i32(off) / 1e7, lon = i32(off + 4) / 1e7, alt = i16(off + 8);
    off += 10;
    if (!(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180)) {
      return { errors: ["binary v1: position " + lat + "," + lon + " out of range"] };
    }
    data.position = { lat: lat, lon: lon, alt: alt === 0x7fff ? null : alt };
  }
  if (flags & 4) { data.sensor_error = u16(off); }
  return { data: data };
}

if (typeof module !== "undefined") { module.exports = { decodeUplink: decodeUplink }; }
