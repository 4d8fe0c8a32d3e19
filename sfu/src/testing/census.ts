// Counts the mediasoup objects alive in this process through mediasoup's observer API, so a test
// can tell that everything a session or room made was closed again. Start it before createSfu.

import type { types } from 'mediasoup';
import * as mediasoup from 'mediasoup';

export interface MediasoupCounts {
  workers: number;
  webRtcServers: number;
  routers: number;
  transports: number;
  producers: number;
  consumers: number;
  dataProducers: number;
  dataConsumers: number;
}

export interface MediasoupCensus {
  /** What is alive now. */
  counts(): MediasoupCounts;
  /** How many of each were ever made. */
  readonly made: MediasoupCounts;
  stop(): void;
}

const zero = (): MediasoupCounts => ({
  workers: 0,
  webRtcServers: 0,
  routers: 0,
  transports: 0,
  producers: 0,
  consumers: 0,
  dataProducers: 0,
  dataConsumers: 0,
});

export function startMediasoupCensus(): MediasoupCensus {
  const live = zero();
  const made = zero();
  const track = (
    kind: keyof MediasoupCounts,
    observer: { once(event: 'close', fn: () => void): unknown },
  ) => {
    live[kind]++;
    made[kind]++;
    observer.once('close', () => {
      live[kind]--;
    });
  };
  const onTransport = (transport: types.Transport) => {
    track('transports', transport.observer);
    transport.observer.on('newproducer', (p) => track('producers', p.observer));
    transport.observer.on('newconsumer', (c) => track('consumers', c.observer));
    transport.observer.on('newdataproducer', (p) => track('dataProducers', p.observer));
    transport.observer.on('newdataconsumer', (c) => track('dataConsumers', c.observer));
  };
  const onWorker = (worker: types.Worker) => {
    track('workers', worker.observer);
    worker.observer.on('newwebrtcserver', (server) => track('webRtcServers', server.observer));
    worker.observer.on('newrouter', (router) => {
      track('routers', router.observer);
      router.observer.on('newtransport', onTransport);
    });
  };
  mediasoup.observer.on('newworker', onWorker);
  return {
    counts: () => ({ ...live }),
    made,
    stop: () => {
      mediasoup.observer.off('newworker', onWorker);
    },
  };
}
