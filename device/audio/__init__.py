"""The native audio engine: fetch, decode, DSP and the sinks that play the result."""
