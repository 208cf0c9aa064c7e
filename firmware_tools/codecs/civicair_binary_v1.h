/* civicair compact binary v1 encoder for firmware (C99, header-only, no allocation).
 *
 * Send the encoded bytes on LoRaWAN fPort 1. Big-endian; 14 bytes, + 2 (NO2), + 10 (GPS),
 * + 2 (sensor error); at most 28 bytes, so it fits EU868 DR0 (51 bytes).
 * Layout and rounding match gateway/codecs/civicair_binary.py; set a CIVICAIR_NA_* value (or
 * leave the `has_*` flag at 0) for what the sensor did not measure.
 *
 *   civicair_frame_t f = civicair_frame_empty();
 *   f.pm25 = 12.3f; f.pm10 = 20.0f; f.temperature = 23.0f; f.humidity = 45.0f;
 *   uint8_t buf[CIVICAIR_MAX_LEN];
 *   size_t len = civicair_encode(&f, buf);   // then LMIC_setTxData2(1, buf, len, 0);
 */
#ifndef CIVICAIR_BINARY_V1_H
#define CIVICAIR_BINARY_V1_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define CIVICAIR_VERSION 1
#define CIVICAIR_MAX_LEN 28
#define CIVICAIR_FPORT 1
#define CIVICAIR_FLAG_NO2 0x01
#define CIVICAIR_FLAG_GPS 0x02
#define CIVICAIR_FLAG_ERROR 0x04
#define CIVICAIR_NA NAN /* "not measured" for float fields */

typedef struct {
  float pm1, pm25, pm10;  /* µg/m³, 0.1 resolution, 0 – 6553.4 */
  float temperature;      /* °C, 0.01, −327.68 – 327.66 */
  float humidity;         /* % RH, 0.5, 0 – 127 */
  float pressure;         /* hPa, 0.1 */
  float battery_v;        /* V, 2.00 – 4.54 */
  float no2;              /* µg/m³, 0.1; NAN = no NO2 block */
  int has_gps;            /* 1: lat/lon/alt block present (mobile sensor with a fix) */
  double lat, lon;        /* degrees, 1e-7 */
  float alt;              /* m; NAN = unknown */
  int has_error;          /* 1: sensor error block present */
  uint16_t sensor_error;  /* 0 = OK */
} civicair_frame_t;

static inline civicair_frame_t civicair_frame_empty(void) {
  civicair_frame_t f = {CIVICAIR_NA, CIVICAIR_NA, CIVICAIR_NA, CIVICAIR_NA, CIVICAIR_NA, CIVICAIR_NA,
                        CIVICAIR_NA, CIVICAIR_NA, 0, 0.0, 0.0, CIVICAIR_NA, 0, 0};
  return f;
}

/* value × scale rounded, clamped into [lo, hi]; `na` when not measured. */
static inline long civicair_scale(double v, double scale, long lo, long hi, long na) {
  if (isnan(v)) return na;
  double r = round(v * scale);
  if (r < lo) return lo;
  if (r > hi) return hi;
  return (long)r;
}

static inline size_t civicair_put16(uint8_t *p, long v) { p[0] = (uint8_t)((v >> 8) & 0xff); p[1] = (uint8_t)(v & 0xff); return 2; }
static inline size_t civicair_put32(uint8_t *p, long v) {
  uint32_t u = (uint32_t)v;
  p[0] = (uint8_t)(u >> 24); p[1] = (uint8_t)(u >> 16); p[2] = (uint8_t)(u >> 8); p[3] = (uint8_t)u;
  return 4;
}

/* Encode into buf (≥ CIVICAIR_MAX_LEN bytes); returns the length. */
static inline size_t civicair_encode(const civicair_frame_t *f, uint8_t *buf) {
  uint8_t flags = 0;
  if (!isnan(f->no2)) flags |= CIVICAIR_FLAG_NO2;
  if (f->has_gps) flags |= CIVICAIR_FLAG_GPS;
  if (f->has_error) flags |= CIVICAIR_FLAG_ERROR;
  size_t n = 0;
  buf[n++] = CIVICAIR_VERSION;
  buf[n++] = flags;
  n += civicair_put16(buf + n, civicair_scale(f->pm1, 10, 0, 0xFFFE, 0xFFFF));
  n += civicair_put16(buf + n, civicair_scale(f->pm25, 10, 0, 0xFFFE, 0xFFFF));
  n += civicair_put16(buf + n, civicair_scale(f->pm10, 10, 0, 0xFFFE, 0xFFFF));
  n += civicair_put16(buf + n, civicair_scale(f->temperature, 100, -32768, 32766, 0x7FFF) & 0xFFFF);
  buf[n++] = (uint8_t)civicair_scale(f->humidity, 2, 0, 0xFE, 0xFF);
  n += civicair_put16(buf + n, civicair_scale(f->pressure, 10, 0, 0xFFFE, 0xFFFF));
  buf[n++] = (uint8_t)civicair_scale(isnan(f->battery_v) ? NAN : f->battery_v - 2.0, 100, 0, 0xFE, 0xFF);
  if (flags & CIVICAIR_FLAG_NO2) n += civicair_put16(buf + n, civicair_scale(f->no2, 10, 0, 0xFFFE, 0xFFFF));
  if (flags & CIVICAIR_FLAG_GPS) {
    n += civicair_put32(buf + n, civicair_scale(f->lat, 1e7, -900000000L, 900000000L, 0));
    n += civicair_put32(buf + n, civicair_scale(f->lon, 1e7, -1800000000L, 1800000000L, 0));
    n += civicair_put16(buf + n, civicair_scale(f->alt, 1, -32768, 32766, 0x7FFF) & 0xFFFF);
  }
  if (flags & CIVICAIR_FLAG_ERROR) n += civicair_put16(buf + n, f->sensor_error);
  return n;
}

#endif /* CIVICAIR_BINARY_V1_H */
