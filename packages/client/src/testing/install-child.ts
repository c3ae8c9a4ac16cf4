// A test helper run as a process of its own (`node install-child.ts MODE ...`), so that a test
// can kill it with SIGKILL at an exact point: no finally blocks, no exit handlers, exactly what a
// crash or a power cut leaves (less the page cache, which fsync covers). Node runs this file
// from source (type stripping); the resolve hook below maps our `./x.js` imports to `./x.ts`.
//
//   hold-lock STATE_DIR
//       take the state lock, print "locked PID", wait to be killed
//   lock-and-exit STATE_DIR
//       take the state lock and exit without releasing it (the exit handler must)
//   install INSTALL_DIR STATE_DIR PATH CONTENT_FILE VERSION CRASH_AT
//       write CONTENT_FILE to a temp file and install it as PATH; CRASH_AT is a step name
//       (INSTALL_STEPS), 'half-written' (halfway through writing the temp file) or 'none'
//   rollback INSTALL_DIR STATE_DIR PATH CRASH_AT
//       roll PATH back, killed at CRASH_AT
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (/^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
        return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      }
      throw error;
    }
  },
});

const { acquireStateLock } = await import('../state-lock.js');
const { Installation, nodeInstallFileSystem } = await import('../install.js');

function crash(): never {
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is not delivered synchronously everywhere; never run past the crash point.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
}

const [mode, ...args] = process.argv.slice(2);

async function openInstallation(installDir: string, stateDir: string, crashAt: string) {
  const lock = await acquireStateLock(stateDir);
  return Installation.open({
    installDir,
    stateDir,
    lock,
    onStep: (step) => {
      if (step === crashAt) crash();
    },
  });
}

switch (mode ?? '') {
  case 'hold-lock': {
    await acquireStateLock(args[0] ?? '');
    process.stdout.write(`locked ${process.pid}\n`);
    setInterval(() => {}, 1 << 30);
    break;
  }
  case 'lock-and-exit': {
    await acquireStateLock(args[0] ?? '');
    process.exit(0);
    break;
  }
  case 'install': {
    const [
      installDir = '',
      stateDir = '',
      path = '',
      contentFile = '',
      version = '',
      crashAt = '',
    ] = args;
    const installation = await openInstallation(installDir, stateDir, crashAt);
    const bytes = new Uint8Array(await readFile(contentFile));
    const temp = await installation.tempPathFor(path);
    const writer = await nodeInstallFileSystem.createFile(temp);
    const half = bytes.length >> 1;
    await writer.write(bytes.subarray(0, half));
    if (crashAt === 'half-written') {
      await writer.sync();
      crash();
    }
    await writer.write(bytes.subarray(half));
    await writer.sync();
    await writer.close();
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await installation.install(path, temp, {
      sha256,
      length: bytes.length,
      version: Number(version),
    });
    process.stdout.write('installed\n');
    process.exit(0);
    break;
  }
  case 'rollback': {
    const [installDir = '', stateDir = '', path = '', crashAt = ''] = args;
    const installation = await openInstallation(installDir, stateDir, crashAt);
    await installation.rollback(path);
    process.stdout.write('rolled back\n');
    process.exit(0);
    break;
  }
  default:
    process.stderr.write(`unknown mode ${String(mode)}\n`);
    process.exit(2);
}
