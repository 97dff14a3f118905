"""Pure, synchronous audio helpers: PCM chunks, resampling, G.711, WAV and file codecs."""
