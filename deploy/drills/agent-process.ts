// One host agent as its own process, from the source tree named by DRILL_AGENT_TREE (this checkout,
// or an older release extracted from git), like host-agent/src/main.ts: configuration from the
// CPHONE_* environment, phones left running on SIGTERM. The one difference is the docker runtime's
// test settings, which main.ts has no environment for: the stand-in image in place of Redroid and
// the bind mounts that carry the stand-in phone (DRILL_IMAGE, DRILL_BINDS as JSON). The runtime
// class itself comes from the same tree as the agent. Prints `ready <version>` once started.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const tree = process.env.DRILL_AGENT_TREE;
const image = process.env.DRILL_IMAGE;
const bindsJson = process.env.DRILL_BINDS;
if (!tree || !image || !bindsJson) {
  process.stderr.write('agent-process: DRILL_AGENT_TREE, DRILL_IMAGE and DRILL_BINDS must be set\n');
  process.exit(2);
}
const binds = JSON.parse(bindsJson) as string[];
type AgentModule = typeof import('@cphone/host-agent');
const agentModule = (await import(pathToFileURL(join(tree, 'host-agent/src/index.ts')).href)) as AgentModule;
const config = agentModule.loadConfig();
const pino = (await import('pino')).default;
const logger = pino({ level: config.logLevel });
const runtime = new agentModule.DockerRuntime({
  socketPath: config.dockerSocket,
  config: { scope: config.runtimeScope, pullPolicy: 'never', imageOverride: image, binds },
});
const agent = await agentModule.startAgent(config, { logger, runtime });
process.stdout.write(`ready ${agentModule.AGENT_VERSION}\n`);

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(1), 15_000);
  force.unref();
  await agent.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
