/**
 * The `open` handshake: the client's offers (`name[=value{,value}]`, one per
 * line) and the server's answer. As in librelp's server, the session speaks
 * the lower of the two protocol versions, unknown offers are ignored, and a
 * client that does not offer the `syslog` command is refused: it is the only
 * command this server takes data from.
 */
import { VERSION } from '../../telemetry/version.js';

/** Highest relp_version this server speaks. Version 0 is what every librelp (rsyslog) sends. */
export const SERVER_RELP_VERSION = 1;

export interface ClientOffers {
  /** The offered relp_version, or null when absent or not a number. */
  relpVersion: number | null;
  commands: string[];
  software: string | null;
}

export type OpenRefusal = 'no_relp_version' | 'no_syslog_command';

export type OpenAnswer =
  | { accepted: true; response: string }
  | { accepted: false; refusal: OpenRefusal; response: string };

const DIGITS_ONLY = /^\d{1,9}$/;

export function parseOffers(data: string): ClientOffers {
  const offers: ClientOffers = { relpVersion: null, commands: [], software: null };
  for (const line of data.split('\n')) {
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    const values = eq < 0 ? [] : line.slice(eq + 1).split(',').filter((v) => v !== '');
    if (name === 'relp_version') {
      const value = values[0];
      offers.relpVersion = value !== undefined && DIGITS_ONLY.test(value) ? Number(value) : null;
    } else if (name === 'commands') {
      // One at a time: spreading a long offer into push() overflows the stack (a 1 MiB frame holds 500k values).
      for (const value of values) offers.commands.push(value);
    } else if (name === 'relp_software') {
      offers.software = values.join(',');
    }
  }
  return offers;
}

/** The `rsp` DATA for an `open` whose DATA is `data`. */
export function answerOpen(data: string): OpenAnswer {
  const offers = parseOffers(data);
  if (offers.relpVersion === null) {
    return { accepted: false, refusal: 'no_relp_version', response: '500 relp_version offer missing or not a number' };
  }
  if (!offers.commands.includes('syslog')) {
    // librelp's wording, so rsyslog's logs read the same against either server.
    return { accepted: false, refusal: 'no_syslog_command', response: '500 required command not supported by client' };
  }
  const version = Math.min(offers.relpVersion, SERVER_RELP_VERSION);
  return {
    accepted: true,
    response: `200 OK\nrelp_version=${version}\nrelp_software=sluice,${VERSION}\ncommands=syslog`,
  };
}
