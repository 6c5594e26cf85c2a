// The client's command line: flags (options.ts) -> ClientOptions -> runClient() -> exit code. The only
// file that touches process.argv, the environment and the process's streams. A drop-in for the Go
// image's /client: `client -tls -server_addr svc:10000 -timeout 10 [name]`.
import { runMain } from '../cli.ts';
import { ClientExit, clientExitCodes } from '../exit-codes.ts';
import { usage } from '../flags.ts';
import { clientFlags, clientOptionsFromArgs, ENV_PREFIX, SYNOPSIS } from './options.ts';
import { runClient } from './program.ts';

async function main(): Promise<number> {
  const options = clientOptionsFromArgs(process.argv.slice(2), process.env);
  if (options === 'help') {
    process.stdout.write(`${usage(clientFlags, SYNOPSIS, ENV_PREFIX, clientExitCodes())}\n`);
    return ClientExit.OK;
  }
  return runClient(options, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}

runMain('client', main);
