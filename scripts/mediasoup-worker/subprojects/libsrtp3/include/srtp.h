// libsrtp 3's packet API over Debian's libsrtp 2.5, for mediasoup's worker (C++ only).
//
// mediasoup 3.16+ is written against libsrtp 3, which Debian does not package. The worker uses the
// same sessions, policies and events as 2.x; what changed is the packet calls: 3.x takes separate
// input and output buffers with size_t lengths (the output length is the buffer's capacity on the
// way in) and an MKI index, where 2.x works in place on an int length and assumes room for the
// trailer. Each overload below checks that room, copies the input to the output buffer and runs the
// 2.x call in place. The worker never configures MKI, so the index is ignored (as 3.x does without
// MKI). 3.x also renamed srtp_remove_stream and added two error codes, which the worker names in its
// error table.
#pragma once

#include <srtp2/srtp.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

constexpr srtp_err_status_t srtp_err_status_buffer_small = static_cast<srtp_err_status_t>(28);
constexpr srtp_err_status_t srtp_err_status_cryptex_err = static_cast<srtp_err_status_t>(29);

namespace cphone_srtp_shim
{
	using InPlace = srtp_err_status_t (*)(srtp_t, void*, int*);

	inline srtp_err_status_t Run(
	  InPlace fn, srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen, size_t room)
	{
		if (inLen > static_cast<size_t>(INT_MAX) - room || *outLen < inLen + room)
			return srtp_err_status_buffer_small;

		if (out != in)
			std::memmove(out, in, inLen);

		int len = static_cast<int>(inLen);
		const srtp_err_status_t err = fn(ctx, out, &len);

		if (err == srtp_err_status_ok)
			*outLen = static_cast<size_t>(len);

		return err;
	}
} // namespace cphone_srtp_shim

inline srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* rtp, size_t rtpLen, uint8_t* srtp, size_t* srtpLen, size_t /*mkiIndex*/)
{
	return cphone_srtp_shim::Run(
	  static_cast<cphone_srtp_shim::InPlace>(srtp_protect), ctx, rtp, rtpLen, srtp, srtpLen, SRTP_MAX_TRAILER_LEN);
}

inline srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* srtp, size_t srtpLen, uint8_t* rtp, size_t* rtpLen)
{
	return cphone_srtp_shim::Run(
	  static_cast<cphone_srtp_shim::InPlace>(srtp_unprotect), ctx, srtp, srtpLen, rtp, rtpLen, 0);
}

inline srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* rtcp, size_t rtcpLen, uint8_t* srtcp, size_t* srtcpLen, size_t /*mkiIndex*/)
{
	return cphone_srtp_shim::Run(
	  static_cast<cphone_srtp_shim::InPlace>(srtp_protect_rtcp),
	  ctx,
	  rtcp,
	  rtcpLen,
	  srtcp,
	  srtcpLen,
	  SRTP_MAX_TRAILER_LEN + sizeof(uint32_t)); // the SRTCP index travels in the trailer too
}

inline srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* srtcp, size_t srtcpLen, uint8_t* rtcp, size_t* rtcpLen)
{
	return cphone_srtp_shim::Run(
	  static_cast<cphone_srtp_shim::InPlace>(srtp_unprotect_rtcp), ctx, srtcp, srtcpLen, rtcp, rtcpLen, 0);
}

inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}
