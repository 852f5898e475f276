#!/usr/bin/env python3
"""Derive data/wordnet/wordnet-3.0-lemmas.tsv.gz from a WordNet 3.0 dict folder (Debian: /usr/share/wordnet).

Keeps only what NLTK's ``wordnet.synsets(word)`` needs to answer which lemma names share a synset with a word:
every synset's lemma names, every index entry (lemma, part of speech -> synsets), and the morphy exception lists.
Glosses, pointers, frames and sense counts are dropped. Standard library only; the output is byte-reproducible.

    apt-get install wordnet-base
    python3 data/wordnet/build_lemmas.py /usr/share/wordnet data/wordnet/wordnet-3.0-lemmas.tsv.gz
"""
import gzip
import re
import sys

POS_FILES = [("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")]


def main(dict_dir, out_path):
    synset_ids = {}  # (data file, byte offset) -> dense id, in file order
    synset_lines = []
    for _, suffix in POS_FILES:
        with open(f"{dict_dir}/data.{suffix}", encoding="utf-8") as fp:
            for line in fp:
                if line.startswith("  "):
                    continue  # the licence header
                fields = line.split("|")[0].split()
                offset, n_lemmas = int(fields[0]), int(fields[3], 16)
                # Same marker stripping as NLTK: "long(a)" -> "long".
                names = [re.match(r"(.*?)(\(.*\))?$", fields[4 + 2 * k]).group(1) for k in range(n_lemmas)]
                synset_ids[(suffix, offset)] = len(synset_lines)
                synset_lines.append(f"S\t{fields[2]}\t{' '.join(names)}")

    index_lines = []
    for pos, suffix in POS_FILES:
        with open(f"{dict_dir}/index.{suffix}", encoding="utf-8") as fp:
            for line in fp:
                if line.startswith(" "):
                    continue
                fields = line.split()
                lemma, n_synsets, n_pointers = fields[0], int(fields[2]), int(fields[3])
                offsets = fields[6 + n_pointers: 6 + n_pointers + n_synsets]
                ids = [str(synset_ids[(suffix, int(o))]) for o in offsets]
                index_lines.append(f"I\t{pos}\t{lemma}\t{' '.join(ids)}")

    exception_lines = []
    for pos, suffix in POS_FILES:
        with open(f"{dict_dir}/{suffix}.exc", encoding="utf-8") as fp:
            for line in fp:
                terms = line.split()
                if terms:
                    exception_lines.append(f"E\t{pos}\t{terms[0]}\t{' '.join(terms[1:])}")

    header = [
        "# WordNet 3.0 lemmas (Princeton University, WordNet 3.0 licence: see LICENSE). Derived by build_lemmas.py.",
        "# S<TAB>pos<TAB>lemma names of synset k (k = 0,1,... in line order; pos n v a s r)",
        "# I<TAB>pos<TAB>lemma<TAB>synset ids (index.<pos> order)",
        "# E<TAB>pos<TAB>inflected form<TAB>base forms (<pos>.exc)",
    ]
    text = "\n".join(header + synset_lines + index_lines + exception_lines) + "\n"
    with open(out_path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(text.encode("utf-8"))
    print(f"{len(synset_lines)} synsets, {len(index_lines)} index entries, {len(exception_lines)} exceptions")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
