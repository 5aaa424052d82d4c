//! dialtone-media: RTP/RTCP, codecs, jitter buffer, DTMF, recorder, player (issue 3).
#![deny(missing_docs)]
