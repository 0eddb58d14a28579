// Subcommand dispatch for the `ts-finetune` command. Each subcommand lives in its own file.

const USAGE = `Usage: ts-finetune <command> [options]

Commands:
  sft        supervised fine-tuning (no arguments: the embedded tiny model and dataset)
  dpo        direct preference optimisation
  orpo       odds-ratio preference optimisation
  generate   generate text from a model (optionally with an adapter)
  merge      merge a LoRA adapter into its base model
  env        versions, execution providers, CPU features, cache paths
`;

export type Subcommand = (argv: string[]) => Promise<number>;

// Loaded lazily, so `ts-finetune env` does not load the trainer. One line per subcommand file.
const commands: Record<string, () => Promise<Subcommand>> = {
  sft: async () => (await import('./sft.js')).sftCommand,
  dpo: async () => (await import('./dpo.js')).dpoCommand,
  orpo: async () => (await import('./orpo.js')).orpoCommand,
  merge: async () => (await import('./merge.js')).mergeCommand,
  env: async () => (await import('./env.js')).envCommand,
  generate: async () => (await import('./generate.js')).generateCommand,
};

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 1 : 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`ts-finetune: unknown command '${name}'\n\n${USAGE}`);
    return 2;
  }
  const cmd = await load();
  return cmd(rest);
}
