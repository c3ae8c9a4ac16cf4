/** A fake monotonic clock that sleeping advances, with a log of the sleeps. */
export function fakeTime() {
  const time = { t: 0, sleeps: [] as number[] };
  return {
    time,
    now: () => time.t,
    sleep: (ms: number) => {
      time.sleeps.push(ms);
      time.t += ms;
      return Promise.resolve();
    },
  };
}
