import { describe, expect, it } from 'vitest';
import {
  CLUSTER_SETTING_KEYS,
  checkClusterSettings,
  overlayClusterSettings,
} from '../../../src/broker/config/cluster-settings.js';
import { loadConfig } from '../../../src/broker/config/load-config.js';

describe('checkClusterSettings', () => {
  it('takes reloadable settings and converts them as the configuration file does', async () => {
    expect(
      await checkClusterSettings({
        'server.idle_timeout': '30s',
        'server.connection_budget': '64MiB',
        'log.level': 'debug',
        'admin.metrics': false,
        'topics.retention': 'forever',
      }),
    ).toEqual({
      'server.idle_timeout': 30_000,
      'server.connection_budget': 64 * 1024 * 1024,
      'log.level': 'debug',
      'admin.metrics': 'false',
      'topics.retention': -1,
    });
  });

  it('refuses unknown keys, restart-only keys, bad values and nothing at all, each with its code', async () => {
    await expect(checkClusterSettings({ 'server.nope': '1' })).rejects.toMatchObject({
      codeName: 'INVALID_CONFIG',
      message: expect.stringContaining('unknown setting "server.nope"'),
    });
    await expect(checkClusterSettings({ 'server.port': '7500', 'log.level': 'info' })).rejects.toMatchObject({
      codeName: 'CONFIG_NOT_RELOADABLE',
      message: expect.stringMatching(
        /server\.port only changes with a restart; cluster-wide settings: .*log\.level/,
      ),
    });
    await expect(
      checkClusterSettings({ 'server.max_connections': 'many', 'log.level': 'loud' }),
    ).rejects.toMatchObject({
      codeName: 'INVALID_CONFIG',
      message: expect.stringMatching(
        /\(server\.max_connections\) "many": expected an integer from 1 to 1000000; \(log\.level\) "loud": expected one of/,
      ),
    });
    await expect(checkClusterSettings({})).rejects.toMatchObject({ codeName: 'INVALID_CONFIG' });
  });

  it('offers exactly the reloadable settings', () => {
    expect(CLUSTER_SETTING_KEYS).toContain('server.max_connections_per_address');
    expect(CLUSTER_SETTING_KEYS).not.toContain('server.port');
    expect(CLUSTER_SETTING_KEYS).not.toContain('cluster.etcd');
  });
});

describe('overlayClusterSettings', () => {
  it("lays the cluster's values over the broker's own, marks them, and skips what it cannot take", async () => {
    const own = await loadConfig({
      env: { MEMORYSTREAMER_SERVER_IDLE_TIMEOUT: '60s', MEMORYSTREAMER_SERVER_MAX_CONNECTIONS: '50' },
    });
    const overlay = await overlayClusterSettings(own, {
      'server.idle_timeout': 5000,
      'server.port': 1,
      'log.level': 'shout',
    });
    expect(overlay.config.values['server.idle_timeout']).toBe(5000);
    expect(overlay.sources['server.idle_timeout']).toBe('cluster');
    // Not set by the cluster: the broker's own value and source stay.
    expect(overlay.config.values['server.max_connections']).toBe(50);
    expect(overlay.sources['server.max_connections']).toBe('env');
    expect(overlay.config.values['server.port']).toBe(7400);
    expect(overlay.config.values['log.level']).toBe('info');
    expect(overlay.ignored).toEqual([
      expect.stringMatching(/^server\.port: .*only changes with a restart/),
      expect.stringMatching(/^log\.level: .*expected one of/),
    ]);
  });
});
