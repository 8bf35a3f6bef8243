// boot.test.ts: a module imported after start-up, once the loader has stopped its compiler process.
await new Promise((resolve) => setTimeout(resolve, 1500));
const { double } = await import('./late-module.ts');
process.stdout.write(`${double(21)}\n`);
