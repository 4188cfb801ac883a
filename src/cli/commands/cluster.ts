// `memorystreamer cluster status`: the cluster as its metadata says (any broker answers): the
// brokers and their addresses, the controller, and the partitions that need attention:
// under-replicated (fewer in-sync replicas than replicas) and offline (no leader). A broker that
// runs alone reports itself as a cluster of one.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { renderFields, renderTable } from '../output.js';

export function registerCluster(program: Command, context: CliContext): void {
  const cluster = program.command('cluster').description('the cluster of brokers');
  cluster
    .command('status')
    .description('brokers, controller, under-replicated and offline partitions')
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer cluster status\n  memorystreamer --json cluster status',
    )
    .action(async () => {
      const client = await context.connect();
      try {
        const metadata = await client.admin.metadata();
        // Internal topics (__consumer_offsets) are the broker's own: not counted, not reported.
        const partitions = metadata.topics
          .filter((topic) => !topic.internal)
          .flatMap((topic) => topic.partitions.map((p) => ({ topic: topic.name, ...p })));
        const offline = partitions.filter((p) => p.leader < 0);
        const underReplicated = partitions.filter((p) => p.leader >= 0 && p.isr.length < p.replicas.length);
        const status = {
          clusterId: metadata.clusterId,
          controller: metadata.controllerId,
          brokers: metadata.brokers.map((broker) => ({
            id: broker.id,
            address: `${broker.host}:${broker.port}`,
          })),
          topics: metadata.topics.filter((topic) => !topic.internal).length,
          partitions: partitions.length,
          underReplicated: underReplicated.map((p) => ({
            topic: p.topic,
            partition: p.partition,
            leader: p.leader,
            replicas: p.replicas,
            isr: p.isr,
          })),
          offline: offline.map((p) => ({ topic: p.topic, partition: p.partition, replicas: p.replicas })),
        };
        const attention = [
          ...underReplicated.map((p) => ({ state: 'under-replicated', p })),
          ...offline.map((p) => ({ state: 'offline', p })),
        ];
        context.print(
          status,
          [
            renderFields({
              cluster: metadata.clusterId ?? 'none (a broker alone)',
              controller: metadata.controllerId < 0 ? 'none elected' : `broker ${metadata.controllerId}`,
              brokers: status.brokers.map((b) => `${b.id} ${b.address}`).join(', '),
              topics: status.topics,
              partitions: status.partitions,
              'under-replicated': underReplicated.length,
              offline: offline.length,
            }),
            ...(attention.length === 0
              ? []
              : [
                  '',
                  renderTable(
                    ['STATE', 'TOPIC', 'PARTITION', 'LEADER', 'REPLICAS', 'ISR'],
                    attention.map(({ state, p }) => [
                      state,
                      p.topic,
                      p.partition,
                      p.leader < 0 ? 'none' : p.leader,
                      p.replicas.join(','),
                      p.isr.join(','),
                    ]),
                  ),
                ]),
          ].join('\n'),
        );
      } finally {
        await client.close();
      }
    });
}
