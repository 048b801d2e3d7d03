"""Call control, sans-I/O: placing, ringing, answering and ending calls over secure sessions,
and the audio each call plays and sends (design §8, §9)."""
