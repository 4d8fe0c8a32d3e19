import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The sfu's metrics, registered on the registry its owner passes in (the agent's /metrics). */
export function createSfuMetrics(registry: Registry) {
  const registers = [registry];
  const metrics = {
    workers: new Gauge({
      name: 'cphone_sfu_workers',
      help: 'mediasoup workers running',
      registers,
    }),
    workerDeaths: new Counter({
      name: 'cphone_sfu_worker_deaths_total',
      help: 'mediasoup workers that died and were replaced',
      registers,
    }),
    rooms: new Gauge({
      name: 'cphone_sfu_rooms',
      help: 'Phones with a room open (a router and a feed)',
      registers,
    }),
    viewers: new Gauge({
      name: 'cphone_sfu_viewers',
      help: 'Sessions holding a seat, by device and rights (view, control)',
      labelNames: ['device_id', 'rights'] as const,
      registers,
    }),
    joins: new Counter({
      name: 'cphone_sfu_joins_total',
      help: 'Join requests by outcome (joined, resumed, or the refusal reason)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    sessionsEnded: new Counter({
      name: 'cphone_sfu_sessions_ended_total',
      help: 'Sessions ended, by end reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    joinDuration: new Histogram({
      name: 'cphone_sfu_join_duration_seconds',
      help: 'From a join request to its answer (token check, room open on a first viewer)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    consumerBitrate: new Histogram({
      name: 'cphone_sfu_consumer_bitrate_bps',
      help: 'Video bitrate sent to a viewer, sampled each stats period',
      buckets: [100e3, 250e3, 500e3, 1e6, 2e6, 4e6, 8e6],
      registers,
    }),
    // What viewers get, per session and stats period (or per presented frame); no session or
    // device label: a host's distribution is what ops compare, a session's own figures are in its
    // reports.
    glassToGlass: new Histogram({
      name: 'cphone_stream_glass_to_glass_seconds',
      help: 'From the phone capturing a frame to a viewer’s browser presenting it, per presented frame',
      buckets: [0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5],
      registers,
    }),
    latencySamples: new Counter({
      name: 'cphone_stream_latency_samples_total',
      help: 'Presented frames players reported, by outcome (measured, unsynced, unknown_frame, implausible)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    fps: new Histogram({
      name: 'cphone_stream_fps',
      help: 'Frames per second a viewer’s player decoded, sampled each stats period',
      buckets: [1, 5, 10, 15, 20, 25, 30, 45, 60],
      registers,
    }),
    packetLoss: new Histogram({
      name: 'cphone_stream_packet_loss_ratio',
      help: 'Fraction of video packets a viewer lost (its RTCP receiver reports), each stats period',
      buckets: [0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
      registers,
    }),
    rtt: new Histogram({
      name: 'cphone_stream_rtt_seconds',
      help: 'Round trip time to a viewer (RTCP), each stats period',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
      registers,
    }),
    jitterBuffer: new Histogram({
      name: 'cphone_stream_jitter_buffer_seconds',
      help: 'A viewer’s average jitter buffer delay (reported by its player), each stats period',
      buckets: [0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.15, 0.25, 0.5],
      registers,
    }),
    inputMessages: new Counter({
      name: 'cphone_sfu_input_messages_total',
      help: 'Input data channel messages by outcome (forwarded, malformed, failed)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    signalingClosed: new Counter({
      name: 'cphone_sfu_signaling_closed_total',
      help: 'Signaling sockets closed by the sfu, by close code',
      labelNames: ['code'] as const,
      registers,
    }),
  };
  // A join's good outcomes exported at 0 from the start, so the first join shows as an increase.
  for (const outcome of ['joined', 'resumed']) metrics.joins.inc({ outcome }, 0);
  return metrics;
}

export type SfuMetrics = ReturnType<typeof createSfuMetrics>;
