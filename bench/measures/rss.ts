// Memory: a fresh pullgate's idle RSS, and its peak while CLIENTS clients stream the 200 MiB blob, cold then warm.
import { MiB } from '../lib/constants.js';
import { biggestLayer } from '../lib/context.js';
import { type BlobGets, blobGetsText, countBlobGets } from '../lib/blob-gets.js';
import { type FanOut, RssSampler, fanOut, procStatusKiB, resetPeakRss } from '../lib/probes.js';
import { fmt } from '../lib/report.js';
import { type MeasureReport, emptyReport } from '../lib/results.js';
import { type RssSplit, START_LIBRARIES, rssSplit, runtimeRss } from '../lib/runtime-rss.js';
import { REPO_ROOT, startFlags } from '../../support/pullgate.js';
import type { RunningPeer } from '../peers/types.js';
import type { Measure } from './types.js';

export const mib = (kib: number | undefined): string => (kib === undefined ? 'n/a' : `${fmt(kib / 1024, 1)} MiB`);

interface RssRun {
  peakKiB: number;
  hwmKiB: number | undefined;
  samples: number;
  run: FanOut;
}

export const rssMeasure: Measure = {
  name: 'rss',
  group: 'rss',
  peers: ['pullgate-1w'],
  async run(ctx, peers): Promise<MeasureReport> {
    const report = emptyReport();
    const peer = peers[0];
    if (peer === undefined) return report;
    const n = ctx.config.clients;
    const layer = biggestLayer(ctx.images.big);
    let running: RunningPeer | undefined;
    let result: { idleKiB: number; idle: RssSplit; cold: RssRun; warm: RssRun; gets: BlobGets } | undefined;
    await ctx.phase(`rss: ${peer.label} while ${n} clients stream the ${fmt(layer.size / MiB)} MiB blob (cold, then warm)`, () => [running?.daemon], async () => {
      const served = peer.serves(ctx, 'bigBlob');
      running = await peer.start(ctx, `${peer.name}-rss`, ctx.direct);
      const pid = running.daemon?.child.pid;
      if (pid === undefined || served === undefined) throw new Error(`${peer.label} has no process to watch`);
      const url = `${running.url}${served.path}`;
      const idle = await rssSplit(pid);
      const idleKiB = idle.rssKiB;
      const mark = await ctx.markUpstream();
      let sampler = new RssSampler(pid);
      const coldRun = await fanOut(url, n, layer.digest);
      const cold = { ...sampler.stop(), hwmKiB: await procStatusKiB(pid, 'VmHWM'), run: coldRun };
      const gets = await countBlobGets(mark.log, layer.digest);
      ctx.log(`cold: peak VmRSS ${mib(cold.peakKiB)}, VmHWM ${mib(cold.hwmKiB)}, upstream GETs ${blobGetsText(gets)}, ${n - coldRun.failures.length}/${n} correct`);
      const reset = await resetPeakRss(pid);
      sampler = new RssSampler(pid);
      const warmRun = await fanOut(url, n, layer.digest);
      const warm = { ...sampler.stop(), hwmKiB: reset ? await procStatusKiB(pid, 'VmHWM') : undefined, run: warmRun };
      ctx.log(`warm: peak VmRSS ${mib(warm.peakKiB)}, VmHWM ${mib(warm.hwmKiB)}, ${n - warmRun.failures.length}/${n} correct`);
      result = { idleKiB, idle, cold, warm, gets };
      await running.stop();
    });
    if (result === undefined) return report;
    const { idleKiB, idle, cold, warm, gets } = result;
    // The runtime's share, read the same way: node alone, and node with pullgate's start-up libraries loaded.
    const bare = await runtimeRss(REPO_ROOT, startFlags(), []);
    const libraries = await runtimeRss(REPO_ROOT, startFlags(), START_LIBRARIES);
    const split = (r: RssSplit): string => `${mib(r.rssKiB)} (private ${mib(r.anonKiB)}, mapped files ${mib(r.fileKiB)})`;
    const coldPeak = Math.max(cold.peakKiB, cold.hwmKiB ?? 0);
    const warmPeak = Math.max(warm.peakKiB, warm.hwmKiB ?? 0);
    const failures = [...cold.run.failures, ...warm.run.failures];
    report.figures.push(
      { label: 'Idle RSS of a fresh process, MiB', cells: { [peer.name]: { samples: [idleKiB / 1024], digits: 1, unit: ' MiB' } } },
      { label: 'Idle RSS: private (anonymous) pages, MiB', cells: { [peer.name]: { samples: [idle.anonKiB / 1024], digits: 1, unit: ' MiB' } } },
      {
        label: `Peak RSS, ${n} clients × ${fmt(layer.size / MiB)} MiB blob, cold / warm`,
        cells: { [peer.name]: { text: `${mib(coldPeak)} / ${mib(warmPeak)}`, samples: [Math.max(coldPeak, warmPeak) / 1024] } },
      },
    );
    const gib = (n * layer.size) / 2 ** 30;
    report.notes.push(
      `RSS (fresh ${peer.label}, VmRSS polled every 20 ms plus VmHWM): ${mib(idleKiB)} idle; cold: polled peak ${mib(cold.peakKiB)}, VmHWM ${mib(cold.hwmKiB)}, ` +
        `upstream GETs ${blobGetsText(gets)}, ${fmt(gib, 1)} GiB served in ${fmt(cold.run.ms)} ms; ` +
        `warm (VmHWM reset via clear_refs): polled peak ${mib(warm.peakKiB)}, VmHWM ${mib(warm.hwmKiB)}, served in ${fmt(warm.run.ms)} ms.` +
        (failures.length > 0 ? ` Failures: ${failures.join('; ')}` : ''),
      `Idle RSS split (/proc/PID/status, same node flags): pullgate ${split(idle)}; node alone ${split(bare)}; node with only ${START_LIBRARIES.join(', ')} loaded ${split(libraries)}. ` +
        'Mapped-file pages (the node binary, native modules) are shared with every other node process on the host, serve --workers included.',
    );
    const peak = Math.max(coldPeak, warmPeak);
    report.targets.push(
      { issue: 3, target: 'Peak RSS ≤ 150 MB (MiB here)', measured: `${mib(peak)} (cold ${mib(coldPeak)}, warm ${mib(warmPeak)})`, met: peak <= 150 * 1024 && failures.length === 0 },
      {
        issue: 14,
        target: 'Idle RSS ≤ 60 MiB',
        measured: `${split(idle)}; node alone ${mib(bare.rssKiB)}, node + pullgate's libraries ${mib(libraries.rssKiB)}`,
        met: idleKiB <= 60 * 1024,
      },
    );
    return report;
  },
};
