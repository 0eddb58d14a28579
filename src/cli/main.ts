// The `ts-finetune` command: dispatches subcommands (sft, dpo, orpo, generate, merge, env).
import { runCli } from './run.js';

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`ts-finetune: ${msg}\n`);
    process.exit(1);
  },
);
