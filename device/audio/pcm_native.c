/*
 * The engine's per-sample loops in C, loaded through ctypes by pcm_native.py.
 *
 * Why: on a Pi-class CPU the speaker's budget is 1.5 x oggdec for decode and
 * everything after it.  libvorbisfile itself costs as much as oggdec; in Python
 * the per-packet calls into it, the limiter's log/exp passes and the float to
 * int16 passes cost another 40-80 %.  Here each is one call per block.  Every
 * function has a numpy twin in dsp.py / vorbis.py that is the reference (and the
 * fallback when this library was not built); tests hold the two to each other.
 *
 * No Python headers and no libvorbis headers: libvorbisfile's ov_read_float is
 * passed in as a function pointer by the caller, which already loaded it.
 * Build: cc -O3 -fno-trapping-math -shared -fPIC -o libpcm_native.so pcm_native.c -lm (make does it).
 */
#include <math.h>
#include <stdint.h>

typedef long (*ov_read_float_fn)(void *vf, float ***pcm, int samples, int *bitstream);

/* Bumped whenever a signature changes, so a stale build is not loaded. */
int lg_abi_version(void) { return 2; }

/* Decode up to max_frames into out, interleaved (frames, channels) float32.
 * Returns the frames decoded (fewer only at the end of the stream, when *ended
 * is set), or libvorbisfile's negative error code with *done_frames holding what
 * was decoded before it.  *nonfinite is set when a decoded sample is NaN or inf. */
long lg_read_interleaved(ov_read_float_fn read, void *vf, float *restrict out, long max_frames,
                         int channels, int *ended, long *done_frames, int *nonfinite) {
    long got = 0;
    int section = 0;
    *ended = 0;
    while (got < max_frames) {
        float **pcm = 0;
        long want = max_frames - got;
        long n = read(vf, &pcm, want > 0x7fffffffL ? 0x7fffffff : (int)want, &section);
        if (n == 0) {
            *ended = 1;
            break;
        }
        if (n < 0) {
            *done_frames = got;
            *nonfinite = 0;
            return n;
        }
        float *dst = out + got * channels;
        if (channels == 2) {
            const float *l = pcm[0], *r = pcm[1];
            for (long i = 0; i < n; i++) {
                dst[2 * i] = l[i];
                dst[2 * i + 1] = r[i];
            }
        } else {
            for (int c = 0; c < channels; c++) {
                const float *src = pcm[c];
                for (long i = 0; i < n; i++) dst[i * channels + c] = src[i];
            }
        }
        got += n;
    }
    *done_frames = got;
    /* NaN or infinity (all exponent bits set) means a broken stream, never audio */
    const uint32_t *bits = (const uint32_t *)out;
    uint32_t bad = 0;
    for (long i = 0; i < got * channels; i++) bad |= (bits[i] & 0x7f800000u) == 0x7f800000u;
    *nonfinite = (int)bad;
    return got;
}

/* The peak limiter of dsp.Limiter, in place over interleaved frames: the reduction
 * r[n] = max(need[n], decay * r[n-1]) with need = 1 - ceiling / peak where the
 * frame's peak is over the ceiling; gain 1 - r, stereo-linked; every output sample
 * within +-ceiling.  *reduction carries r across blocks.  Returns how many frames
 * were over the ceiling. */
long lg_limit(float *restrict x, long frames, int channels, float ceiling, double decay,
              double *restrict reduction) {
    double r = *reduction;
    long over = 0;
    for (long n = 0; n < frames; n++) {
        float *f = x + n * channels;
        float peak = 0.0f;
        for (int c = 0; c < channels; c++) {
            float a = fabsf(f[c]);
            peak = a > peak ? a : peak;
        }
        /* branch-free: under the ceiling (or silent: -inf) need is below 0 <= r */
        double need = 1.0 - (double)ceiling / (double)peak;
        r *= decay;
        r = need > r ? need : r;
        over += peak > ceiling;
        float g = (float)(1.0 - r); /* exactly 1 while r < 2^-25: untouched samples */
        for (int c = 0; c < channels; c++) {
            float y = f[c] * g;
            y = y > ceiling ? ceiling : y;
            f[c] = y < -ceiling ? -ceiling : y;
        }
    }
    *reduction = r;
    return over;
}

static inline int16_t clip_s16(float y) {
    y = y == y ? y : 0.0f; /* NaN: a DSP bug plays as silence, not noise */
    y = y > 32767.0f ? 32767.0f : y;
    y = y < -32768.0f ? -32768.0f : y;
    /* Round to nearest, ties to even (the default rounding mode), without a libm
     * call: adding 1.5 * 2^23 leaves no fraction bits for |y| < 2^22 (strict IEEE
     * arithmetic, so the compiler may not fold the two constants away). */
    return (int16_t)((y + 12582912.0f) - 12582912.0f);
}

/* Float in [-1, 1) to int16: x * 32768 rounded to nearest (ties to even), clipped. */
void lg_to_s16(const float *restrict x, int16_t *restrict out, long n) {
    for (long i = 0; i < n; i++) out[i] = clip_s16(x[i] * 32768.0f);
}

/* Software volume on int16: x * gain rounded to nearest, clipped. */
void lg_scale_s16(const int16_t *restrict x, int16_t *restrict out, long n, float gain) {
    for (long i = 0; i < n; i++) out[i] = clip_s16((float)x[i] * gain);
}

/* The same with the gain moving linearly from start to end over the frames
 * (a volume change ramps over a block instead of clicking). */
void lg_ramp_s16(const int16_t *restrict x, int16_t *restrict out, long frames, int channels, float start,
                 float end) {
    float step = frames > 1 ? (end - start) / (float)(frames - 1) : 0.0f;
    for (long n = 0; n < frames; n++) {
        float g = start + step * (float)n;
        for (int c = 0; c < channels; c++)
            out[n * channels + c] = clip_s16((float)x[n * channels + c] * g);
    }
}
