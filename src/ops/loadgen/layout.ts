/**
 * Who each simulated agent is: its tenant, its source address and hostname,
 * and the node configuration whose tenants match those addresses.
 *
 * Agents are numbered 0..N-1 across all workers; agent a belongs to tenant
 * a % T (so every worker's slice mixes tenants) and is agent a / T of it.
 * Tenant t's agents bind to 127.0.<t+1>.<1..250>: the node resolves
 * unauthenticated tenants by source network, and loopback needs no setup.
 */
import type { LoadgenOptions } from './options.js';

/** Source addresses per tenant: .1 to .250 of its /24. */
const ADDRESSES_PER_TENANT = 250;

export function tenantOf(agent: number, tenants: number): number {
  return agent % tenants;
}

export function indexInTenant(agent: number, tenants: number): number {
  return Math.floor(agent / tenants);
}

/** The tenant id the printed node configuration gives tenant t. */
export function tenantId(tenant: number): string {
  return `t${tenant}`;
}

export function tenantNetwork(tenant: number): string {
  return `127.0.${tenant + 1}.0/24`;
}

export function localAddress(agent: number, tenants: number): string {
  return `127.0.${tenantOf(agent, tenants) + 1}.${1 + (indexInTenant(agent, tenants) % ADDRESSES_PER_TENANT)}`;
}

export function agentHostname(agent: number, tenants: number): string {
  return `agent-${tenantOf(agent, tenants)}-${indexInTenant(agent, tenants)}`;
}

/** The slice of agents worker w of W owns: as even as integer division allows. */
export function workerSlice(worker: number, workers: number, agents: number): { first: number; count: number } {
  const first = Math.floor((worker * agents) / workers);
  const next = Math.floor(((worker + 1) * agents) / workers);
  return { first, count: next - first };
}

/**
 * A node configuration (YAML) that listens where the load generator sends and
 * owns its tenants' networks: for a RELP target its RELP source (the syslog
 * sources keep their defaults), else syslog over TCP and UDP on the target's port.
 */
export function nodeConfigYaml(options: Pick<LoadgenOptions, 'protocol' | 'tenants' | 'dataDir' | 'target'>): string {
  const { host, port } = options.target;
  const listeners = options.protocol === 'relp'
    ? [`  relp: { address: ${host}, port: ${port} }`]
    : [`  syslog_tcp: { address: ${host}, port: ${port} }`, `  syslog_udp: { address: ${host}, port: ${port} }`];
  const lines = [
    `# A sluice node for \`sluice loadgen --tenants ${options.tenants}\`: tenant tN owns 127.0.<N+1>.0/24,`,
    '# the network the load generator binds tenant tN\'s agents to.',
    `data_dir: ${JSON.stringify(options.dataDir)}`,
    'sources:',
    ...listeners,
    'tenants:',
  ];
  for (let t = 0; t < options.tenants; t++) {
    lines.push(`  ${tenantId(t)}:`, `    networks: [${tenantNetwork(t)}]`);
  }
  return lines.join('\n') + '\n';
}
